-- The leader's retention batch: prune_workflows.sql, fenced on the leader's lease (holder, term,
-- unexpired on the database clock), so a deposed leader deletes nothing. See prune_workflows.sql
-- for what goes and why.
WITH victims AS (
    SELECT workflow_uuid
    FROM dbos.workflow_status
    WHERE created_at < (extract(epoch FROM statement_timestamp()) * 1000)::bigint - %(older_than_ms)s
      AND created_at >= %(after_ms)s
      AND status = ANY(%(statuses)s)
      AND status NOT IN ('PENDING', 'ENQUEUED', 'DELAYED')
      AND EXISTS (
          SELECT 1 FROM dbos.pgfleet_leader
          WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
      )
    ORDER BY created_at
    LIMIT %(batch_size)s
    FOR UPDATE SKIP LOCKED
),
steps AS (
    DELETE FROM dbos.operation_outputs o WHERE o.workflow_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims)) RETURNING 1
),
events AS (
    DELETE FROM dbos.workflow_events e WHERE e.workflow_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims)) RETURNING 1
),
event_history AS (
    DELETE FROM dbos.workflow_events_history h WHERE h.workflow_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims)) RETURNING 1
),
stream_values AS (
    DELETE FROM dbos.streams s WHERE s.workflow_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims)) RETURNING 1
),
messages AS (
    DELETE FROM dbos.notifications n WHERE n.destination_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims)) RETURNING 1
),
attempts AS (
    DELETE FROM dbos.pgfleet_step_attempts a WHERE a.workflow_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims)) RETURNING 1
),
gone AS (
    DELETE FROM dbos.workflow_status w WHERE w.workflow_uuid = ANY(ARRAY(SELECT workflow_uuid FROM victims))
    RETURNING w.workflow_uuid, w.status, w.created_at
)
SELECT
    coalesce((SELECT array_agg(workflow_uuid ORDER BY created_at) FROM gone), ARRAY[]::text[]) AS workflow_ids,
    (SELECT max(created_at) FROM gone) AS last_created_at,
    coalesce((SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) AS n FROM gone GROUP BY status) g), '{}'::jsonb) AS by_status,
    (SELECT count(*) FROM steps) AS steps,
    (SELECT count(*) FROM events) + (SELECT count(*) FROM event_history) AS events,
    (SELECT count(*) FROM stream_values) AS streams,
    (SELECT count(*) FROM messages) AS messages,
    (SELECT count(*) FROM attempts) AS attempts
