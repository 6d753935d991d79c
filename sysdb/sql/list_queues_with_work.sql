-- Which of these queues have work that can start now: one cheap statement per idle poll. Each
-- probe is an index lookup (the partial indexes on ENQUEUED and on DELAYED rows), however long
-- the history; delayed work that is not due yet (on the database clock) does not count.
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
