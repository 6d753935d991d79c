-- The database server's clock in epoch milliseconds, for this process's estimate of it.
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms
