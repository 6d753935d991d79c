-- Take the oldest unconsumed message for a workflow and topic (DBOS.recv). Run in the same
-- transaction as the recv's fenced checkpoint: if the checkpoint fails, the message stays
-- unconsumed for the workflow's new owner.
WITH oldest AS (
    SELECT message_uuid
    FROM dbos.notifications
    WHERE destination_uuid = %(destination_id)s
      AND topic = %(topic)s
      AND NOT consumed
    ORDER BY created_at_epoch_ms, message_uuid
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE dbos.notifications AS n
SET consumed = TRUE
FROM oldest
WHERE n.message_uuid = oldest.message_uuid
RETURNING n.message, n.serialization
