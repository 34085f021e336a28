ALTER TABLE processing_tasks
    DROP INDEX idx_waiting_since,
    DROP INDEX idx_queue,
    DROP COLUMN attempts,
    DROP COLUMN lease_expires_at,
    DROP COLUMN lease_owner,
    DROP COLUMN next_attempt_at,
    DROP COLUMN queued_at;
