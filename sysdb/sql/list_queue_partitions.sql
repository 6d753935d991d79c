-- The partition keys of a partitioned queue that have work waiting.
SELECT DISTINCT queue_partition_key
FROM dbos.workflow_status
WHERE queue_name = %(queue_name)s
  AND status IN ('ENQUEUED', 'DELAYED')
  AND queue_partition_key IS NOT NULL
