-- A running workflow cancels itself at its deadline, fenced on its owner and epoch like every
-- other write: an old execution that lost the workflow (taken over, or resumed with a fresh
-- epoch and no deadline) matches nothing and cancels nobody.
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    updated_at = %(now_ms)s,
    deduplication_id = NULL
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
  AND workflow_deadline_epoch_ms IS NOT NULL
  AND workflow_deadline_epoch_ms <= %(now_ms)s
