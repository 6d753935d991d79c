-- The limits of each queue as any member declared them in code, active or not (a chaos run's
-- members may all be dead by the time it reads them), the freshest member's view winning; then
-- the database-backed queues (dbos.queues) that no member declared (a code declaration of the
-- same name wins, as when the fleet claims).
WITH declared AS (
    SELECT DISTINCT ON (name)
           name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, partitioned AS partition_queue
    FROM dbos.pgfleet_declared_queue_limits
    ORDER BY name, last_heartbeat DESC
)
SELECT name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, partition_queue FROM declared
UNION ALL
SELECT b.name, b.concurrency, b.worker_concurrency, b.rate_limit_max, b.rate_limit_period_sec, b.partition_queue
FROM dbos.queues b
WHERE NOT EXISTS (SELECT 1 FROM declared d WHERE d.name = b.name)
ORDER BY name
