-- The latest takeovers, newest first, each with how long its lost owner had been silent when the
-- workflow moved: recorded with the takeover (migration 0010); for older rows, known while the
-- member row still holds that incarnation.
SELECT t.id, t.at, t.workflow_uuid, t.from_executor_id, t.from_epoch, t.to_executor_id, t.to_epoch,
       t.requeued_to, t.by_executor_id, t.leader_term,
       EXTRACT(EPOCH FROM t.at - coalesce(t.owner_last_seen,
                                          CASE WHEN e.epoch = t.from_epoch THEN e.last_heartbeat END))::float8 AS silent_sec
FROM dbos.pgfleet_takeovers t
LEFT JOIN dbos.pgfleet_executors e ON e.executor_id = t.from_executor_id
ORDER BY t.id DESC
LIMIT %(limit)s
