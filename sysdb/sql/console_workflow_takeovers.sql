-- One workflow's takeovers in order (its ownership history on the console's workflow page).
SELECT t.id, t.at, t.workflow_uuid, t.from_executor_id, t.from_epoch, t.to_executor_id, t.to_epoch,
       t.requeued_to, t.by_executor_id, t.leader_term,
       CASE WHEN e.epoch = t.from_epoch THEN EXTRACT(EPOCH FROM t.at - e.last_heartbeat)::float8 END AS silent_sec
FROM dbos.pgfleet_takeovers t
LEFT JOIN dbos.pgfleet_executors e ON e.executor_id = t.from_executor_id
WHERE t.workflow_uuid = %(workflow_uuid)s
ORDER BY t.id
