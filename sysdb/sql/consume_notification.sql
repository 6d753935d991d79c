-- Take the oldest unconsumed message for a workflow and topic (DBOS.recv). Run in the same
-- transaction as the recv's fenced checkpoint: if the checkpoint fails, the message stays
-- unconsumed for the workflow's new owner.
-- FOR UPDATE waits (never SKIP LOCKED): the only other taker of this workflow's messages is a
-- lost owner inside its own recv, whose fenced checkpoint rolls it back (or whose session the
-- idle-in-transaction timeout ends); skipping the row would make recv return None for a
-- message that is there. If that owner committed, the re-check skips the consumed row and the
-- next one is taken. Messages sent together (send_bulk) share their created_at: among those
-- the physical order is the order they were inserted in, as DBOS's own read finds them.
WITH oldest AS (
    SELECT message_uuid
    FROM dbos.notifications
    WHERE destination_uuid = %(destination_id)s
      AND topic = %(topic)s
      AND NOT consumed
    ORDER BY created_at_epoch_ms, ctid
    LIMIT 1
    FOR UPDATE
)
UPDATE dbos.notifications AS n
SET consumed = TRUE
FROM oldest
WHERE n.message_uuid = oldest.message_uuid
RETURNING n.message, n.serialization
