-- The workflows an executor was running when it stopped: recovered at its next launch.
SELECT workflow_uuid, name, queue_name, owner_epoch, recovery_attempts
FROM dbos.workflow_status
WHERE status = 'PENDING' AND executor_id = %(executor_id)s
ORDER BY created_at
