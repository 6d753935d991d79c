-- A member's heartbeat, on the database clock. No row: this incarnation was declared dead (or
-- replaced), and must stop executing at once.
UPDATE dbos.pgfleet_executors
SET last_heartbeat = now(),
    workflow_names = %(workflow_names)s
WHERE executor_id = %(executor_id)s
  AND epoch = %(epoch)s
  AND status IN ('active', 'leaving')
RETURNING status
