-- Per queue, now: its limits, how many workflows wait (ENQUEUED, DELAYED) and run (PENDING),
-- how long the longest-waiting ENQUEUED one has waited, and how many started in the last
-- minute: the console's queues page and the leader's Prometheus gauges (issue #13).
-- The queues: those the live members declare in code (the freshest member's view wins, as in
-- list_queue_definitions), the database-backed ones (dbos.queues) no member declares, and any
-- queue that has live rows or recent starts though nobody declares it (limits NULL).
-- Cost: every count reads only live rows, however long the history: ENQUEUED and PENDING rows
-- through the partial index idx_workflow_status_in_flight, DELAYED ones through
-- idx_workflow_status_delayed, the last minute's starts through a range of
-- idx_workflow_status_started_at. Finished workflows are never scanned.
-- A row's wait counts from its updated_at, the moment it (last) became ENQUEUED: its enqueue,
-- the release of its delay, a resume or a requeue (not its created_at, which would count a
-- delay or an earlier run as waiting). Times are on the database clock.
WITH now_ms AS (
    SELECT (extract(epoch FROM statement_timestamp()) * 1000)::bigint AS ms
),
declared AS (
    SELECT DISTINCT ON (name)
           name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, priority_enabled, partitioned
    FROM dbos.pgfleet_declared_queue_limits
    WHERE executor_status = 'active'
    ORDER BY name, last_heartbeat DESC
),
limits AS (
    SELECT * FROM declared
    UNION ALL
    SELECT b.name, b.concurrency, b.worker_concurrency, b.rate_limit_max, b.rate_limit_period_sec,
           b.priority_enabled, b.partition_queue
    FROM dbos.queues b
    WHERE NOT EXISTS (SELECT 1 FROM declared d WHERE d.name = b.name)
),
in_flight AS (
    SELECT queue_name,
           count(*) FILTER (WHERE status = 'ENQUEUED') AS enqueued,
           count(*) FILTER (WHERE status = 'PENDING') AS pending,
           min(updated_at) FILTER (WHERE status = 'ENQUEUED') AS oldest_enqueued_ms
    FROM dbos.workflow_status
    WHERE status IN ('ENQUEUED', 'PENDING') AND queue_name IS NOT NULL
    GROUP BY queue_name
),
delayed AS (
    SELECT queue_name, count(*) AS delayed
    FROM dbos.workflow_status
    WHERE status = 'DELAYED' AND queue_name IS NOT NULL
    GROUP BY queue_name
),
started AS (
    SELECT queue_name, count(*) AS started_last_minute
    FROM dbos.workflow_status
    WHERE started_at_epoch_ms IS NOT NULL
      AND started_at_epoch_ms > (SELECT ms FROM now_ms) - 60000
      AND queue_name IS NOT NULL
    GROUP BY queue_name
),
names AS (
    SELECT name FROM limits
    UNION SELECT queue_name FROM in_flight
    UNION SELECT queue_name FROM delayed
    UNION SELECT queue_name FROM started
)
SELECT n.name,
       l.concurrency,
       l.worker_concurrency,
       l.rate_limit_max,
       l.rate_limit_period_sec,
       coalesce(l.priority_enabled, FALSE) AS priority_enabled,
       coalesce(l.partitioned, FALSE) AS partitioned,
       coalesce(f.enqueued, 0)::int AS enqueued,
       coalesce(d.delayed, 0)::int AS delayed,
       coalesce(f.pending, 0)::int AS pending,
       -- NULL when nothing waits (greatest() alone would turn that into 0); never negative
       -- when a row's updated_at came from a host clock ahead of the database's.
       CASE WHEN f.oldest_enqueued_ms IS NOT NULL
            THEN greatest((SELECT ms FROM now_ms) - f.oldest_enqueued_ms, 0) / 1000.0::float8
       END AS oldest_enqueued_age_sec,
       coalesce(s.started_last_minute, 0)::int AS started_last_minute
FROM names n
LEFT JOIN limits l ON l.name = n.name
LEFT JOIN in_flight f ON f.queue_name = n.name
LEFT JOIN delayed d ON d.queue_name = n.name
LEFT JOIN started s ON s.queue_name = n.name
ORDER BY n.name
