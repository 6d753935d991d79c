-- The latest takeovers, newest first.
SELECT at, workflow_uuid, from_executor_id, from_epoch, to_executor_id, to_epoch, requeued_to,
       by_executor_id, leader_term
FROM dbos.pgfleet_takeovers
ORDER BY id DESC
LIMIT %(limit)s
