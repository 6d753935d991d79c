-- Register a database-backed queue: insert it, or (when update_existing) overwrite the
-- settings of the existing row, in DBOS's layout so DBOS's CLI and clients read it. The owner
-- of an existing row is kept (an unclaimed row is claimed); a row another application owns is
-- left alone, and the caller raises on the previous owner this returns. The time is the
-- database's (updated_at, like created_at's default).
WITH existing AS (
    SELECT application_name FROM dbos.queues WHERE name = %(name)s
),
written AS (
    INSERT INTO dbos.queues AS q (
        name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec,
        priority_enabled, partition_queue, polling_interval_sec, updated_at, application_name
    )
    SELECT %(name)s, %(concurrency)s, %(worker_concurrency)s, %(rate_limit_max)s, %(rate_limit_period_sec)s,
           %(priority_enabled)s, %(partition_queue)s, %(polling_interval_sec)s,
           (extract(epoch FROM clock_timestamp()) * 1000)::bigint, %(application_name)s
    WHERE NOT EXISTS (
        SELECT 1 FROM existing
        WHERE existing.application_name IS NOT NULL
          AND %(application_name)s::text IS NOT NULL
          AND existing.application_name <> %(application_name)s::text
    )
    ON CONFLICT (name) DO UPDATE
    SET concurrency = EXCLUDED.concurrency,
        worker_concurrency = EXCLUDED.worker_concurrency,
        rate_limit_max = EXCLUDED.rate_limit_max,
        rate_limit_period_sec = EXCLUDED.rate_limit_period_sec,
        priority_enabled = EXCLUDED.priority_enabled,
        partition_queue = EXCLUDED.partition_queue,
        polling_interval_sec = EXCLUDED.polling_interval_sec,
        updated_at = EXCLUDED.updated_at,
        application_name = coalesce(q.application_name, EXCLUDED.application_name)
    WHERE %(update_existing)s
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM existing) AS existed,
       (SELECT application_name FROM existing) AS previous_owner,
       (SELECT count(*) FROM written) AS written
