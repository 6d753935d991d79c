-- PENDING workflows a takeover assigned to this executor that it is not running yet. Only an
-- epoch a takeover handed out counts: the epochs of workflows this executor started, claimed or
-- recovered itself are never picked up here, even in the instant before they are running.
SELECT w.workflow_uuid, w.owner_epoch, w.recovery_attempts, w.name, w.class_name, w.config_name,
       w.inputs, w.serialization, w.authenticated_user, w.authenticated_roles, w.assumed_role,
       w.workflow_timeout_ms, w.workflow_deadline_epoch_ms, w.queue_name,
       -- the membership this read was made under: its reply may arrive after that ended
       %(member_epoch)s::bigint AS acquired_member_epoch
FROM dbos.workflow_status w
JOIN dbos.pgfleet_takeovers t
  ON t.workflow_uuid = w.workflow_uuid AND t.to_epoch = w.owner_epoch
WHERE w.status = 'PENDING'
  AND w.executor_id = %(executor_id)s
  AND NOT (w.owner_epoch = ANY(%(running_epochs)s))
