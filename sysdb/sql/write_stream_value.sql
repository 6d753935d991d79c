-- Append a value to one of a workflow's streams, only while this executor owns the workflow
-- (the status row is locked FOR SHARE, as for a step checkpoint). The offset is the next one
-- of the key. No row: ownership lost.
WITH owned AS (
    SELECT workflow_uuid
    FROM dbos.workflow_status
    WHERE workflow_uuid = %(workflow_id)s
      AND executor_id = %(executor_id)s
      AND owner_epoch = %(owner_epoch)s
      AND status = 'PENDING'
    FOR SHARE
)
INSERT INTO dbos.streams (workflow_uuid, key, value, "offset", function_id, serialization)
SELECT workflow_uuid, %(key)s, %(value)s,
       (SELECT coalesce(max("offset") + 1, 0) FROM dbos.streams WHERE workflow_uuid = %(workflow_id)s AND key = %(key)s),
       %(function_id)s, %(serialization)s
FROM owned
RETURNING "offset"
