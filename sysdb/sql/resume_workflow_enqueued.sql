-- Resume a cancelled or dead-lettered workflow from outside any executor (DBOSClient): it goes
-- to the internal queue, which every executor serves, with a fresh recovery budget.
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
  AND status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
RETURNING workflow_uuid
