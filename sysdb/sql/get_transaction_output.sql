-- A transaction's output recorded in the application database (replay after a lost checkpoint).
SELECT output, error, function_name
FROM dbos.transaction_outputs
WHERE workflow_uuid = %(workflow_id)s AND function_id = %(function_id)s
