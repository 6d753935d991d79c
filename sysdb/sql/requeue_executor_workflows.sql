-- At an executor's start: the queued workflows it had claimed and not finished go back to their
-- queue, to be claimed again under the queue's limits (replaying their recorded steps).
UPDATE dbos.workflow_status
SET status = 'ENQUEUED',
    executor_id = NULL,
    owner_epoch = NULL,
    started_at_epoch_ms = NULL,
    updated_at = %(now_ms)s
WHERE status = 'PENDING'
  AND executor_id = %(executor_id)s
  AND queue_name IS NOT NULL
RETURNING workflow_uuid
