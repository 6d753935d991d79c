-- A datasource step's recorded outcome (a replay, or a retry after a lost reply).
SELECT output, error, serialization
FROM {schema}.datasource_outputs
WHERE workflow_id = %(workflow_id)s AND step_id = %(step_id)s
