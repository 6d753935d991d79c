-- Per queue: how many workflows wait (ENQUEUED or DELAYED) and how many run (PENDING).
SELECT queue_name,
       count(*) FILTER (WHERE status = 'ENQUEUED') AS enqueued,
       count(*) FILTER (WHERE status = 'DELAYED') AS delayed,
       count(*) FILTER (WHERE status = 'PENDING') AS running
FROM dbos.workflow_status
WHERE queue_name IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')
GROUP BY queue_name
ORDER BY queue_name
