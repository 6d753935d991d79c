-- The leader cancels workflows whose deadline passed (their owners stop at the next write),
-- fenced by its lease.
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    updated_at = %(now_ms)s,
    deduplication_id = NULL
WHERE workflow_deadline_epoch_ms IS NOT NULL
  AND status IN ('PENDING', 'ENQUEUED')
  AND workflow_deadline_epoch_ms < %(now_ms)s
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > now()
  )
RETURNING workflow_uuid
