CREATE TRIGGER trg_task_created AFTER INSERT ON processing_tasks FOR EACH ROW
    INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason)
    VALUES (NEW.id, NULL, NEW.status, NEW.attempts, NULL, 'created');

CREATE TRIGGER trg_task_status_changed AFTER UPDATE ON processing_tasks FOR EACH ROW
    INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason)
    SELECT NEW.id, OLD.status, NEW.status, NEW.attempts, NEW.lease_owner,
           LEFT(CONCAT_WS(': ', NEW.current_step, NEW.error_message), 500)
    FROM DUAL WHERE NOT (OLD.status <=> NEW.status);
