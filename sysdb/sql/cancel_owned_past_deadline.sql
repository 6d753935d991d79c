-- A running workflow cancels itself at its deadline, fenced on its owner and epoch like every
-- other write: an old execution that lost the workflow (taken over, or resumed with a fresh
-- epoch) matches nothing and cancels nobody. The owner compared the deadline with its estimate
-- of the database clock; it is not compared again here, where a few milliseconds of estimate
-- error would turn a due cancel into a false "ownership lost".
-- The row is left as any cancel leaves it (cancel_workflows.sql), as DBOS's timeout, which is a
-- cancel there: off its queue, its deduplication id and its start (a rate limiter's slot)
-- released, completed now.
WITH clock AS (SELECT (extract(epoch FROM statement_timestamp()) * 1000)::bigint AS now_ms)
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    queue_name = NULL,
    deduplication_id = NULL,
    started_at_epoch_ms = NULL,
    updated_at = (SELECT now_ms FROM clock),
    completed_at = (SELECT now_ms FROM clock)
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
  AND workflow_deadline_epoch_ms IS NOT NULL
