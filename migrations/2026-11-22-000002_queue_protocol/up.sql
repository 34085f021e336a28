-- What the queue protocol needs beyond the seed's processing_tasks.
--
-- A task's life: pending (status 0, queued_at NULL) -> the scheduler pushes
-- its task_id to a Redis list and sets queued_at -> a worker claims it with a
-- guarded UPDATE (status 0 -> 1, lease_owner, lease_expires_at,
-- attempts + 1) -> the worker commits results and status 2/3 in one
-- transaction guarded by `status = 1 AND lease_owner = me AND attempts = my
-- token AND lease_expires_at > NOW(3)`. The database stays the source of
-- truth; Redis only carries task ids.

ALTER TABLE processing_tasks
    -- When the scheduler last pushed this task's id to a Redis queue. NULL
    -- while the task waits for the scheduler. A pending task with a non-NULL
    -- queued_at is "queued": its id is in Redis (or was, before Redis lost it:
    -- the scheduler then clears queued_at to rebuild the queues).
    ADD COLUMN queued_at TIMESTAMP(3) NULL COMMENT 'pushed to a Redis queue at (NULL: waiting for the scheduler)',
    -- Earliest time the scheduler may queue the task: now for new tasks, later
    -- for a retry waiting out its backoff.
    ADD COLUMN next_attempt_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) COMMENT 'not queued before this time (retry backoff)',
    -- The worker that holds (or last held) the task, e.g. host:pid:random.
    ADD COLUMN lease_owner VARCHAR(100) NULL COMMENT 'worker holding the lease',
    -- The lease ends here unless the owner's heartbeat extends it; after that
    -- the scheduler's reaper hands the task to another worker.
    ADD COLUMN lease_expires_at TIMESTAMP(3) NULL COMMENT 'lease ends unless renewed',
    -- How many times a worker has claimed the task. The current value is the
    -- fencing token of the current lease: a worker whose claim was taken over
    -- holds an older token and every write it tries matches no row.
    ADD COLUMN attempts INT NOT NULL DEFAULT 0 COMMENT 'claims so far; fencing token of the current lease',
    -- The scheduler's query: pending rows not yet queued, by priority then age
    -- (`WHERE status = 0 AND queued_at IS NULL ORDER BY priority, id ... FOR
    -- UPDATE SKIP LOCKED`). The index serves the ORDER BY, so SKIP LOCKED locks
    -- only the rows it returns (MariaDB otherwise filesorts, and
    -- SKIP LOCKED then locks every pending row). Its leading
    -- `status` replaces the seed's idx_status; with `status = 1` it also
    -- serves the lease reaper, which scans only running rows.
    ADD INDEX idx_queue (status, queued_at, priority, id),
    -- Priority aging: pending rows that have waited longer than the maximum
    -- wait (`WHERE status = 0 AND queued_at IS NULL AND next_attempt_at < ?`),
    -- oldest first, whatever their priority.
    ADD INDEX idx_waiting_since (status, queued_at, next_attempt_at);
