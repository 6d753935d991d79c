-- Give up on a workflow that failed to finish after too many recovery attempts.
UPDATE dbos.workflow_status
SET status = 'MAX_RECOVERY_ATTEMPTS_EXCEEDED',
    updated_at = %(now_ms)s,
    deduplication_id = NULL
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
