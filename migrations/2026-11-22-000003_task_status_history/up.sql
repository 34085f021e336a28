-- Every status change of a task, with time, worker and reason, so an
-- operator can see why a task ran twice or failed (history table, as
-- docs/seed/database-design-pitfalls.md advises: keep history, never
-- overwrite it).
--
-- Written by triggers rather than by each code path: a change made by the
-- worker, the reaper, the CLI or another system writing SQL directly is
-- recorded all the same, in the same transaction as the change itself.
-- No foreign key (a log table, per the pitfalls document: logical key only),
-- so deleting a task keeps its history.

CREATE TABLE task_status_history (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '记录ID',
    task_id BIGINT NOT NULL COMMENT 'processing_tasks.id (logical key)',
    from_status TINYINT NULL COMMENT 'previous status (NULL: created)',
    to_status TINYINT NOT NULL COMMENT 'new status',
    attempt INT NOT NULL COMMENT 'processing_tasks.attempts at the change',
    worker VARCHAR(100) NULL COMMENT 'lease owner at the change',
    reason VARCHAR(500) NULL COMMENT 'step and error message at the change',
    changed_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'when',
    INDEX idx_task_changed (task_id, changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='任务状态历史表';

CREATE TRIGGER trg_task_created AFTER INSERT ON processing_tasks FOR EACH ROW
    INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason)
    VALUES (NEW.id, NULL, NEW.status, NEW.attempts, NULL, 'created');

CREATE TRIGGER trg_task_status_changed AFTER UPDATE ON processing_tasks FOR EACH ROW
    INSERT INTO task_status_history (task_id, from_status, to_status, attempt, worker, reason)
    SELECT NEW.id, OLD.status, NEW.status, NEW.attempts, NEW.lease_owner,
           LEFT(CONCAT_WS(': ', NEW.current_step, NEW.error_message), 500)
    FROM DUAL WHERE NOT (OLD.status <=> NEW.status);
