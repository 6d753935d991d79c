-- A page of a workflow's recorded steps (DBOS.list_workflow_steps with limit/offset); without
-- %(load_output)s the outputs and errors are not read.
SELECT function_id, function_name,
       CASE WHEN %(load_output)s THEN output END AS output,
       CASE WHEN %(load_output)s THEN error END AS error,
       child_workflow_id, started_at_epoch_ms, completed_at_epoch_ms, serialization
FROM dbos.operation_outputs
WHERE workflow_uuid = %(workflow_id)s
ORDER BY function_id
LIMIT %(limit)s OFFSET %(offset)s
