-- Every workflow event's final value, as stored (serialized).
SELECT workflow_uuid, key, value, serialization
FROM dbos.workflow_events
ORDER BY workflow_uuid, key
