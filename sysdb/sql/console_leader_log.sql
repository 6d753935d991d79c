-- The leader log's latest actions, newest first (the console's fleet page).
SELECT id, at, term, executor_id, action, detail
FROM dbos.pgfleet_leader_log
ORDER BY id DESC
LIMIT %(limit)s
