-- A member announces it is leaving (draining) or gone (handing its work over now).
UPDATE dbos.pgfleet_executors
SET status = %(status)s
WHERE executor_id = %(executor_id)s
  AND epoch = %(epoch)s
RETURNING executor_id
