-- The offset a workflow's stream write at one step landed at (a retry after a lost reply
-- reads back what its first attempt wrote).
SELECT "offset"
FROM dbos.streams
WHERE workflow_uuid = %(workflow_id)s AND key = %(key)s AND function_id = %(function_id)s
