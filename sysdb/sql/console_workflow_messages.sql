-- The messages sent to one workflow, oldest first, consumed or not, as stored.
SELECT message_uuid, topic, message, serialization, created_at_epoch_ms, consumed
FROM dbos.notifications
WHERE destination_uuid = %(workflow_uuid)s
ORDER BY created_at_epoch_ms, message_uuid
LIMIT %(limit)s
