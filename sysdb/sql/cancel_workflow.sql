-- Cancel a workflow that has not finished. Its owner notices at its next checkpoint (every
-- fenced write requires status PENDING) and stops without writing.
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    updated_at = %(now_ms)s,
    deduplication_id = NULL
WHERE workflow_uuid = %(workflow_id)s
  AND status NOT IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
RETURNING workflow_uuid
