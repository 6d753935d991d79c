-- Is a message waiting for this workflow and topic? (checked before waiting in DBOS.recv)
SELECT EXISTS (
    SELECT 1 FROM dbos.notifications
    WHERE destination_uuid = %(destination_id)s AND topic = %(topic)s AND NOT consumed
) AS waiting
