-- Every action of every leader, in the order they were logged.
SELECT id, term, executor_id, action, extract(epoch FROM at)::float8 AS at
FROM dbos.pgfleet_leader_log
ORDER BY id
