-- Recover one workflow: a compare-and-set from the epoch that was read to a fresh one,
-- counting the attempt. Returns nothing if someone else moved the row meanwhile.
UPDATE dbos.workflow_status
SET owner_epoch = nextval('dbos.pgfleet_epoch_seq'),
    executor_id = %(executor_id)s,
    recovery_attempts = recovery_attempts + 1,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND status = 'PENDING'
  AND executor_id = %(previous_executor_id)s
  AND owner_epoch IS NOT DISTINCT FROM %(previous_epoch)s
RETURNING owner_epoch, recovery_attempts
