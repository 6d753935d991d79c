-- The leader's housekeeping in one round trip, every statement fenced by its lease (holder, term,
-- not expired, database clock); all three read one snapshot, and their rows are disjoint by status:
-- * promoted: delayed workflows whose time has come (on the database clock: a leader whose host
--   clock runs ahead releases nothing early) move to ENQUEUED. A debounced workflow's
--   deduplication id is its debounce key, held only while it waits: it is cleared in the same
--   update, so a later debounce of the key starts a fresh workflow instead of bouncing this one.
-- * cancelled: workflows whose deadline passed (their owners stop at the next write). A delayed
--   one past its deadline is promoted here and cancelled by the next round.
-- * dead: dead members that still own PENDING workflows, which a sweep must take over.
WITH lease AS (
    SELECT 1
    FROM dbos.pgfleet_leader
    WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
), promoted AS (
    UPDATE dbos.workflow_status
    SET status = 'ENQUEUED',
        deduplication_id = CASE WHEN is_debounced THEN NULL ELSE deduplication_id END,
        updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint
    WHERE status = 'DELAYED'
      AND delay_until_epoch_ms <= (extract(epoch FROM statement_timestamp()) * 1000)::bigint
      AND EXISTS (SELECT 1 FROM lease)
    RETURNING workflow_uuid, queue_name
), cancelled AS (
    UPDATE dbos.workflow_status
    SET status = 'CANCELLED',
        updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint,
        deduplication_id = NULL
    WHERE workflow_deadline_epoch_ms IS NOT NULL
      AND status IN ('PENDING', 'ENQUEUED')
      AND workflow_deadline_epoch_ms < (extract(epoch FROM statement_timestamp()) * 1000)::bigint
      AND EXISTS (SELECT 1 FROM lease)
    RETURNING workflow_uuid
)
SELECT 'promoted' AS kind, workflow_uuid AS id, queue_name, NULL::bigint AS epoch FROM promoted
UNION ALL
SELECT 'cancelled', workflow_uuid, NULL, NULL FROM cancelled
UNION ALL
SELECT 'dead', e.executor_id, NULL, e.epoch
FROM dbos.pgfleet_executors e
WHERE e.status = 'dead'
  AND EXISTS (SELECT 1 FROM lease)
  AND EXISTS (
      SELECT 1 FROM dbos.workflow_status w
      WHERE w.executor_id = e.executor_id AND w.status = 'PENDING'
  )
