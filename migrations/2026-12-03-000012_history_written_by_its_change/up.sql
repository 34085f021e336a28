-- task_status_history is written by the function that owns each status
-- change (shared/src/tasks: create, backfill, claim, finish, reap, cancel,
-- retry), one INSERT ... SELECT per batch in the change's own transaction
-- (shared/src/history.rs). The triggers of migration 3 go: with them on the
-- table, every UPDATE of processing_tasks (progress, heartbeats, queueing)
-- paid for them, about a fifth of MariaDB's CPU per no-op task even when
-- their body did nothing (BENCHMARKS.md, queue throughput). A program that
-- changes status with its own SQL is no longer recorded.

DROP TRIGGER trg_task_created;
DROP TRIGGER trg_task_status_changed;
