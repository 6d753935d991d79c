-- Queues recorded in DBOS's queues table, with their limits (pgfleet status, pgfleet queue list).
-- pgfleet declares queues in code and does not write this table; DBOS may have.
SELECT name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec,
       priority_enabled, partition_queue, polling_interval_sec, application_name
FROM dbos.queues
ORDER BY name
