-- Every event a workflow has set, with its latest value (DBOS.get_all_events).
SELECT key, value, serialization
FROM dbos.workflow_events
WHERE workflow_uuid = %(workflow_id)s
ORDER BY key
