-- Which of these queues have work that can start now: one cheap statement per idle poll. Each
-- probe is an index lookup (the partial indexes on ENQUEUED and on DELAYED rows), however long
-- the history; delayed work that is not due yet (on the database clock) does not count.
-- With discover, the same statement also names the database-backed queues (dbos.queues) of
-- this application (or unclaimed) that have work and that the claimer does not know yet
-- (known_names), among the served ones (served_names; NULL: every one): so an executor finds
-- a newly registered queue without a statement of its own.
SELECT q AS queue_name
FROM unnest(%(queue_names)s::text[]) AS q
WHERE EXISTS (
        SELECT 1 FROM dbos.workflow_status w
        WHERE w.queue_name = q AND w.status = 'ENQUEUED'
    )
   OR EXISTS (
        SELECT 1 FROM dbos.workflow_status w
        WHERE w.queue_name = q AND w.status = 'DELAYED' AND w.delay_until_epoch_ms <= (extract(epoch FROM statement_timestamp()) * 1000)::bigint
    )
UNION ALL
SELECT d.name
FROM dbos.queues d
WHERE %(discover)s
  AND d.name <> ALL(%(known_names)s::text[])
  AND (%(served_names)s::text[] IS NULL OR d.name = ANY(%(served_names)s::text[]))
  AND (%(application_name)s::text IS NULL OR d.application_name IS NULL OR d.application_name = %(application_name)s::text)
  AND (EXISTS (
        SELECT 1 FROM dbos.workflow_status w
        WHERE w.queue_name = d.name AND w.status = 'ENQUEUED'
    ) OR EXISTS (
        SELECT 1 FROM dbos.workflow_status w
        WHERE w.queue_name = d.name AND w.status = 'DELAYED' AND w.delay_until_epoch_ms <= (extract(epoch FROM statement_timestamp()) * 1000)::bigint
    ))
