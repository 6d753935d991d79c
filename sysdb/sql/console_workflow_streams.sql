-- One workflow's stream values by key and offset, as stored (the console decodes them).
SELECT key, "offset", value, serialization, function_id
FROM dbos.streams
WHERE workflow_uuid = %(workflow_uuid)s
ORDER BY key, "offset"
LIMIT %(limit)s
