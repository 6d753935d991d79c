-- The leader cancels workflows whose deadline passed (their owners stop at the next write),
-- fenced by its lease. Deadlines are on the database clock, and so is this comparison.
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint,
    deduplication_id = NULL
WHERE workflow_deadline_epoch_ms IS NOT NULL
  AND status IN ('PENDING', 'ENQUEUED')
  AND workflow_deadline_epoch_ms < (extract(epoch FROM statement_timestamp()) * 1000)::bigint
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
  )
RETURNING workflow_uuid
