-- The leader moves delayed workflows whose time has come to ENQUEUED, fenced by its lease.
-- "Has come" on the database clock: a leader whose host clock runs ahead releases nothing early.
UPDATE dbos.workflow_status
SET status = 'ENQUEUED',
    updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint
WHERE status = 'DELAYED'
  AND delay_until_epoch_ms <= (extract(epoch FROM statement_timestamp()) * 1000)::bigint
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
  )
RETURNING workflow_uuid, queue_name
