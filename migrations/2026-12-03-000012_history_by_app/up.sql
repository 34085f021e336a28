-- Creating, claiming and finishing record their status changes themselves,
-- one INSERT ... SELECT per batch (shared/src/history.rs), which costs a
-- fraction of one trigger run per row. They set the session variable
-- @videoclip_history_by_app inside their transaction and unset it before
-- they commit; every other writer (the reaper, cancel, retry, another
-- system's SQL) leaves it unset and is recorded by these triggers as before.

DROP TRIGGER trg_task_created;

CREATE TRIGGER trg_task_created AFTER INSERT ON processing_tasks FOR EACH ROW
BEGIN
    IF @videoclip_history_by_app IS NULL THEN
        INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason)
        VALUES (NEW.id, NULL, NEW.status, NEW.attempts, NULL, 'created');
    END IF;
END;

DROP TRIGGER trg_task_status_changed;

CREATE TRIGGER trg_task_status_changed AFTER UPDATE ON processing_tasks FOR EACH ROW
BEGIN
    IF @videoclip_history_by_app IS NULL AND NOT (OLD.status <=> NEW.status) THEN
        INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason)
        VALUES (NEW.id, OLD.status, NEW.status, NEW.attempts, NEW.lease_owner,
                LEFT(CONCAT_WS(': ', NEW.current_step, NEW.error_message), 500));
    END IF;
END;
