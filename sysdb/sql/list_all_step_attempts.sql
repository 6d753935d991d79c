-- The whole attempt ledger, in the order the bodies started (its ids come from a sequence).
SELECT id, workflow_uuid, function_id, function_name, executor_id, owner_epoch, pid, attempt, owned,
       extract(epoch FROM started_at)::float8 AS at
FROM dbos.pgfleet_step_attempts
ORDER BY id
