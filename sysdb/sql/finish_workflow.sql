-- Record a workflow's outcome. Succeeds only while this executor owns it with this epoch;
-- the UPDATE re-checks the predicate on the newest row version by itself. A finished
-- workflow gives up its deduplication id so the id can be used again.
UPDATE dbos.workflow_status
SET status = %(status)s,
    output = %(output)s,
    error = %(error)s,
    updated_at = %(now_ms)s,
    completed_at = %(now_ms)s,
    deduplication_id = NULL
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
