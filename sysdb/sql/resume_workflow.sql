-- Resume a cancelled or failed-over workflow here: it becomes PENDING under this executor with
-- a fresh epoch and a fresh recovery budget, and is replayed from its recorded steps.
UPDATE dbos.workflow_status
SET status = 'PENDING',
    executor_id = %(executor_id)s,
    owner_epoch = nextval('dbos.pgfleet_epoch_seq'),
    recovery_attempts = 0,
    queue_name = NULL,
    deduplication_id = NULL,
    workflow_deadline_epoch_ms = NULL,
    started_at_epoch_ms = %(now_ms)s,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', 'ENQUEUED')
RETURNING owner_epoch
