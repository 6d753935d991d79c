-- Resume a workflow that has not finished, as DBOS does: a cancelled, dead-lettered, queued or
-- delayed workflow goes (back) to the given queue (the internal one, which every executor
-- serves, unless the caller names another) as ENQUEUED, with a fresh recovery budget. Whoever
-- claims it replays it under a new epoch. A running (PENDING) one is left alone.
UPDATE dbos.workflow_status
SET status = 'ENQUEUED',
    queue_name = %(queue_name)s,
    executor_id = NULL,
    owner_epoch = NULL,
    recovery_attempts = 0,
    deduplication_id = NULL,
    workflow_deadline_epoch_ms = NULL,
    started_at_epoch_ms = NULL,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', 'ENQUEUED', 'DELAYED')
RETURNING workflow_uuid
