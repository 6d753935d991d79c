-- Each member records the limits of the queues it declares in code (pgfleet_executors.
-- queue_limits, a JSON object by queue name). Three readers parse it -- the fleet's claim
-- limits (list_queue_definitions), the queue figures of the console and the leader's gauges
-- (queue_figures), and a chaos run's replay of the limits (list_declared_queue_limits) -- and
-- each used to spell the parsing out; this view is that parsing, once: one row per member and
-- declared queue (DBOS's internal queue left out), with the member's status and last heartbeat
-- for the readers to pick the freshest live view.
CREATE VIEW dbos.pgfleet_declared_queue_limits AS
SELECT e.executor_id,
       e.status AS executor_status,
       e.last_heartbeat,
       q.key AS name,
       (q.value ->> 'concurrency')::int AS concurrency,
       (q.value ->> 'worker_concurrency')::int AS worker_concurrency,
       (q.value -> 'rate_limit' ->> 0)::int AS rate_limit_max,
       (q.value -> 'rate_limit' ->> 1)::float8 AS rate_limit_period_sec,
       coalesce((q.value ->> 'priority_enabled')::boolean, FALSE) AS priority_enabled,
       coalesce((q.value ->> 'partitioned')::boolean, FALSE) AS partitioned
FROM dbos.pgfleet_executors e
CROSS JOIN LATERAL jsonb_each(e.queue_limits) AS q
WHERE e.queue_limits IS NOT NULL
  AND q.key <> '_dbos_internal_queue';
