-- One member row, to decide whether a new process may take over its executor id.
SELECT executor_id, epoch, host, pid, status, last_heartbeat,
       coalesce(%(now)s::timestamptz, now()) - last_heartbeat < make_interval(secs => %(member_timeout_sec)s) AS fresh
FROM dbos.pgfleet_executors
WHERE executor_id = %(executor_id)s
