-- Every takeover, in the order they were logged.
SELECT workflow_uuid, from_executor_id, from_epoch, to_executor_id, to_epoch, requeued_to, by_executor_id, leader_term,
       extract(epoch FROM at)::float8 AS at
FROM dbos.pgfleet_takeovers
ORDER BY id
