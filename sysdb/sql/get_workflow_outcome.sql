-- What a waiter needs to know about a workflow: is it done, and with what.
SELECT status, output, error, serialization
FROM dbos.workflow_status
WHERE workflow_uuid = %(workflow_id)s
