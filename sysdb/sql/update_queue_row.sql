-- Change some settings of a database-backed queue (a Queue setter): each set_X flag says
-- whether X changes. Claimers read a database-backed queue's limits from this row inside every
-- claim, so a change holds fleet-wide from the next claim on.
UPDATE dbos.queues
SET concurrency = CASE WHEN %(set_concurrency)s THEN %(concurrency)s::int ELSE concurrency END,
    worker_concurrency = CASE WHEN %(set_worker_concurrency)s THEN %(worker_concurrency)s::int ELSE worker_concurrency END,
    rate_limit_max = CASE WHEN %(set_limiter)s THEN %(rate_limit_max)s::int ELSE rate_limit_max END,
    rate_limit_period_sec = CASE WHEN %(set_limiter)s THEN %(rate_limit_period_sec)s::float8 ELSE rate_limit_period_sec END,
    priority_enabled = CASE WHEN %(set_priority_enabled)s THEN %(priority_enabled)s::boolean ELSE priority_enabled END,
    partition_queue = CASE WHEN %(set_partition_queue)s THEN %(partition_queue)s::boolean ELSE partition_queue END,
    polling_interval_sec = CASE WHEN %(set_polling_interval_sec)s THEN %(polling_interval_sec)s::float8 ELSE polling_interval_sec END,
    updated_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint
WHERE name = %(name)s
