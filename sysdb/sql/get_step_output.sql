-- One recorded step, used to tell a lost ownership from a write that already landed.
SELECT function_id, function_name, output, error, child_workflow_id, serialization
FROM dbos.operation_outputs
WHERE workflow_uuid = %(workflow_id)s AND function_id = %(function_id)s
