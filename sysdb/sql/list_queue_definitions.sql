-- The limits of each queue as the live members declared them in code (each member records its
-- queues' limits when it registers; the view parses them); the freshest member's view wins.
SELECT DISTINCT ON (name)
       name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, priority_enabled,
       partitioned AS partition_queue
FROM dbos.pgfleet_declared_queue_limits
WHERE executor_status = 'active'
ORDER BY name, last_heartbeat DESC
