-- Every member row, whatever its status (a chaos run's dead members included).
SELECT executor_id, pid, host AS hostname, status, epoch, extract(epoch FROM last_heartbeat)::float8 AS last_heartbeat
FROM dbos.pgfleet_executors
ORDER BY executor_id
