-- A running workflow cancels itself at its deadline, fenced on its owner and epoch like every
-- other write: an old execution that lost the workflow (taken over, or resumed with a fresh
-- epoch) matches nothing and cancels nobody. The owner compared the deadline with its estimate
-- of the database clock; it is not compared again here, where a few milliseconds of estimate
-- error would turn a due cancel into a false "ownership lost".
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint,
    deduplication_id = NULL
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
  AND workflow_deadline_epoch_ms IS NOT NULL
