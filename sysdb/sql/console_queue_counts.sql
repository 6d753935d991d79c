-- Per queue with unfinished work or recent starts: ENQUEUED / DELAYED / PENDING counts, the
-- oldest ENQUEUED row's wait and the starts of the last minute, on the database clock. Reads
-- only unfinished rows (status filter) and recent starts (the started_at index).
WITH clock AS (SELECT (EXTRACT(EPOCH FROM now()) * 1000)::bigint AS now_ms),
live AS (
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'ENQUEUED') AS enqueued,
           count(*) FILTER (WHERE status = 'DELAYED') AS delayed,
           count(*) FILTER (WHERE status = 'PENDING') AS pending,
           min(created_at) FILTER (WHERE status = 'ENQUEUED') AS oldest_enqueued_ms
    FROM dbos.workflow_status
    WHERE queue_name IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
    GROUP BY queue_name
),
started AS (
    SELECT w.queue_name, count(*) AS started_last_minute
    FROM dbos.workflow_status w, clock
    WHERE w.started_at_epoch_ms >= clock.now_ms - 60000 AND w.queue_name IS NOT NULL
    GROUP BY w.queue_name
)
SELECT coalesce(l.queue_name, s.queue_name) AS name,
       coalesce(l.enqueued, 0) AS enqueued,
       coalesce(l.delayed, 0) AS delayed,
       coalesce(l.pending, 0) AS pending,
       ((SELECT now_ms FROM clock) - l.oldest_enqueued_ms) / 1000.0 AS oldest_enqueued_age_sec,
       coalesce(s.started_last_minute, 0) AS started_last_minute
FROM live l
FULL JOIN started s ON s.queue_name = l.queue_name
ORDER BY 1
