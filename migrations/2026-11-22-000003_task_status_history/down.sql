DROP TRIGGER IF EXISTS trg_task_status_changed;
DROP TRIGGER IF EXISTS trg_task_created;
DROP TABLE IF EXISTS task_status_history;
