-- The latest value of a workflow's event (DBOS.getEvent).
SELECT value, serialization
FROM dbos.workflow_events
WHERE workflow_uuid = %(workflow_id)s AND key = %(key)s
