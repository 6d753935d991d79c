-- Retention (issue #13): delete one batch of finished workflows created before the cutoff, with
-- everything recorded for them, in one short statement. As DBOS's garbage_collect: by
-- created_at, never a PENDING, ENQUEUED or DELAYED workflow (checked here as well as by the
-- caller), and a finished parent goes even while a child it started still runs (nothing of the
-- child refers to the parent's rows). The batch walks workflow_status_created_at_index from the
-- keyset %(after_ms)s up, so a batch reads about %(batch_size)s index entries, not the table.
-- FOR UPDATE re-checks the status on the row's latest version: a workflow resumed meanwhile
-- (CANCELLED -> ENQUEUED) no longer matches and stays; SKIP LOCKED leaves a row someone is
-- writing to the next batch. The dependent tables are emptied explicitly (ON DELETE CASCADE
-- would too) so the statement can say how many rows of each went; the attempt ledger has no
-- foreign key and goes here too. Each delete looks its rows up by the ids (= ANY of an array:
-- an index scan on the table's leading workflow_uuid column whatever the table's size).
-- With a %(term)s (the leader's batch), it is fenced on that lease (holder, term, unexpired on
-- the database clock), so a deposed leader deletes nothing; the CLI passes none.
WITH victims AS (
    SELECT workflow_uuid
    FROM dbos.workflow_status
    WHERE created_at < (extract(epoch FROM statement_timestamp()) * 1000)::bigint - %(older_than_ms)s
      AND created_at >= %(after_ms)s
      AND status = ANY(%(statuses)s)
      AND status NOT IN ('PENDING', 'ENQUEUED', 'DELAYED')
      AND (%(term)s::bigint IS NULL OR EXISTS (
          SELECT 1 FROM dbos.pgfleet_leader
          WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
      ))
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
