-- Resume a cancelled or failed-over workflow here: it becomes PENDING under this executor with
-- the fresh epoch the caller drew (its attempt token) and a fresh recovery budget, and is
-- replayed from its recorded steps. A retry after a lost reply finds the row PENDING with its
-- token and matches again (writing the same values).
UPDATE dbos.workflow_status
SET status = 'PENDING',
    executor_id = %(executor_id)s,
    owner_epoch = %(owner_epoch)s,
    recovery_attempts = 0,
    queue_name = NULL,
    deduplication_id = NULL,
    workflow_deadline_epoch_ms = NULL,
    started_at_epoch_ms = %(now_ms)s,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND (status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', 'ENQUEUED')
       OR (status = 'PENDING' AND executor_id = %(executor_id)s AND owner_epoch = %(owner_epoch)s))
RETURNING owner_epoch
