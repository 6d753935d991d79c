-- The limits of each queue as the live members declared them in code (each member records its
-- queues' limits when it registers); the freshest member's view wins.
SELECT DISTINCT ON (q.key)
       q.key AS name,
       (q.value ->> 'concurrency')::int AS concurrency,
       (q.value ->> 'worker_concurrency')::int AS worker_concurrency,
       (q.value -> 'rate_limit' ->> 0)::int AS rate_limit_max,
       (q.value -> 'rate_limit' ->> 1)::float8 AS rate_limit_period_sec,
       coalesce((q.value ->> 'priority_enabled')::boolean, FALSE) AS priority_enabled,
       coalesce((q.value ->> 'partitioned')::boolean, FALSE) AS partition_queue
FROM dbos.pgfleet_executors e
CROSS JOIN LATERAL jsonb_each(e.queue_limits) AS q
WHERE e.status = 'active'
  AND e.queue_limits IS NOT NULL
  AND q.key <> '_dbos_internal_queue'
ORDER BY q.key, e.last_heartbeat DESC
