-- A stream's values from an offset on, in order.
SELECT "offset", value, serialization
FROM dbos.streams
WHERE workflow_uuid = %(workflow_id)s AND key = %(key)s AND "offset" >= %(from_offset)s
ORDER BY "offset"
