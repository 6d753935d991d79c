-- The leader moves delayed workflows whose time has come to ENQUEUED, fenced by its lease.
UPDATE dbos.workflow_status
SET status = 'ENQUEUED',
    updated_at = %(now_ms)s
WHERE status = 'DELAYED'
  AND delay_until_epoch_ms <= %(now_ms)s
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > now()
  )
RETURNING workflow_uuid, queue_name
