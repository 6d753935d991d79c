-- A member's heartbeat, on the database clock. No row: this incarnation was declared dead (or
-- replaced), and must stop executing at once. db_now_ms keeps the member's estimate of the
-- database clock fresh (sysdb/clock.py).
UPDATE dbos.pgfleet_executors
SET last_heartbeat = coalesce(%(now)s::timestamptz, now()),
    workflow_names = %(workflow_names)s
WHERE executor_id = %(executor_id)s
  AND epoch = %(epoch)s
  AND status IN ('active', 'leaving')
RETURNING status, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS db_now_ms
