-- One database-backed queue (DBOS.register_queue), by name.
SELECT name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec,
       priority_enabled, partition_queue, polling_interval_sec, application_name
FROM dbos.queues
WHERE name = %(name)s
