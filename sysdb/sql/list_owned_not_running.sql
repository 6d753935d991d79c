-- PENDING workflows that name this executor with an epoch none of its threads runs: the orphans
-- of an ownership write (a claim) whose reply was lost, whatever wrote them. The caller reads
-- this twice around waiting for its in-flight claims, and adopts only rows seen both times.
SELECT w.workflow_uuid, w.owner_epoch, w.recovery_attempts, w.name, w.class_name, w.config_name,
       w.inputs, w.serialization, w.authenticated_user, w.authenticated_roles, w.assumed_role,
       w.workflow_timeout_ms, w.workflow_deadline_epoch_ms, w.queue_name
FROM dbos.workflow_status w
WHERE w.status = 'PENDING'
  AND w.executor_id = %(executor_id)s
  AND NOT (w.owner_epoch = ANY(%(running_epochs)s))
