-- Every recorded step of a workflow, read once when a workflow is replayed.
SELECT function_id, function_name, output, error, child_workflow_id,
       started_at_epoch_ms, completed_at_epoch_ms, serialization
FROM dbos.operation_outputs
WHERE workflow_uuid = %(workflow_id)s
ORDER BY function_id
