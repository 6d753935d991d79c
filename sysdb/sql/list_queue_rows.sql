-- The database-backed queues of these applications plus the unclaimed ones (owned by nobody,
-- so by every application); a NULL list is every application's.
SELECT name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec,
       priority_enabled, partition_queue, polling_interval_sec, application_name
FROM dbos.queues
WHERE %(application_names)s::text[] IS NULL
   OR application_name IS NULL
   OR application_name = ANY(%(application_names)s::text[])
ORDER BY created_at, name
