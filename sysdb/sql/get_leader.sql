-- The current lease, with whether it is still valid and for how long (database clock).
SELECT term, executor_id, executor_epoch, backend_pid, acquired_at, expires_at,
       expires_at > coalesce(%(now)s::timestamptz, now()) AS valid,
       GREATEST(0, EXTRACT(EPOCH FROM expires_at - coalesce(%(now)s::timestamptz, now())))::float8 AS remaining_sec
FROM dbos.pgfleet_leader
