-- A workflow this executor acquired but cannot run here: a method whose class or configured
-- instance it lacks (a takeover picks its new owner by workflow name alone). Fenced on this
-- owner, it goes back to its queue, or DBOS's internal queue if it had none, where only an
-- executor that has what it names claims it (claim_queued_workflows.sql); its recorded steps
-- replay there. Left PENDING here, it would have been stranded under a live owner.
UPDATE dbos.workflow_status
SET status = 'ENQUEUED',
    queue_name = coalesce(queue_name, %(internal_queue)s),
    executor_id = NULL,
    owner_epoch = NULL,
    started_at_epoch_ms = NULL,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
RETURNING queue_name
