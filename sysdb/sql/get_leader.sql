-- The current lease, with whether it is still valid (database clock).
SELECT term, executor_id, executor_epoch, backend_pid, acquired_at, expires_at,
       expires_at > now() AS valid
FROM dbos.pgfleet_leader
