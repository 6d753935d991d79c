-- Recover one workflow: a compare-and-set from the epoch that was read to the fresh one the
-- caller drew (its attempt token), counting the attempt. Returns nothing if someone else moved
-- the row meanwhile. A retry after a lost reply finds the row already bearing its token: it
-- matches again, and the attempt is counted once.
UPDATE dbos.workflow_status
SET owner_epoch = %(owner_epoch)s,
    executor_id = %(executor_id)s,
    recovery_attempts = recovery_attempts + CASE WHEN owner_epoch = %(owner_epoch)s THEN 0 ELSE 1 END,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND status = 'PENDING'
  AND ((executor_id = %(previous_executor_id)s AND owner_epoch IS NOT DISTINCT FROM %(previous_epoch)s)
       OR (executor_id = %(executor_id)s AND owner_epoch = %(owner_epoch)s))
RETURNING owner_epoch, recovery_attempts
