-- The attempt ledger's rows of one workflow, in the order the bodies started.
SELECT id, workflow_uuid, function_id, function_name, executor_id, owner_epoch, pid, attempt, owned, started_at
FROM dbos.pgfleet_step_attempts
WHERE workflow_uuid = %(workflow_uuid)s
ORDER BY function_id, id
