-- The workflow that holds a live deduplication id of a queue (duplication_policy
-- 'return-existing'); none when the holder finished in the meantime.
SELECT workflow_uuid
FROM dbos.workflow_status
WHERE queue_name = %(queue_name)s
  AND deduplication_id = %(deduplication_id)s
