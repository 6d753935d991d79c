-- Migration 0009's three console indexes ((name | queue_name | executor_id, created_at,
-- workflow_uuid)) are dropped again (issue #14). Every workflow's start and its non-HOT finish
-- (and a queued one's claim) inserted an entry into two or three of them: about a tenth of a
-- 3-step workflow's time on a durable server, in the SQL alone and through the engine, and the
-- three were the largest indexes of a 1 M-row history (56-59 MB each, against 53 MB for the
-- primary key). Without them the console's filtered lists walk DBOS's created_at index and
-- filter (about 10-12 ms for a filter that matches one row in a thousand of 1 M rows); only a
-- filter that matches nothing at all reads the whole history (ops/bench/RESULTS.md, "Console").
DROP INDEX IF EXISTS dbos.pgfleet_workflow_status_name_created;
DROP INDEX IF EXISTS dbos.pgfleet_workflow_status_queue_created;
DROP INDEX IF EXISTS dbos.pgfleet_workflow_status_executor_created;
