-- The leader moves delayed workflows whose time has come to ENQUEUED, fenced by its lease.
-- "Has come" on the database clock: a leader whose host clock runs ahead releases nothing early.
-- A debounced workflow's deduplication id is its debounce key, held only while it waits: it is
-- cleared in the same update, so a later debounce of the key starts a fresh workflow instead of
-- bouncing this one (which is now committed to running).
UPDATE dbos.workflow_status
SET status = 'ENQUEUED',
    deduplication_id = CASE WHEN is_debounced THEN NULL ELSE deduplication_id END,
    updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint
WHERE status = 'DELAYED'
  AND delay_until_epoch_ms <= (extract(epoch FROM statement_timestamp()) * 1000)::bigint
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
  )
RETURNING workflow_uuid, queue_name
