-- Send a message to a workflow (DBOS.send). The table's trigger NOTIFYs listeners.
-- A missing destination fails on the foreign key.
INSERT INTO dbos.notifications (message_uuid, destination_uuid, topic, message, serialization)
VALUES (%(message_uuid)s, %(destination_id)s, %(topic)s, %(message)s, %(serialization)s)
ON CONFLICT (message_uuid) DO NOTHING
