-- Create a workflow that this executor will run at once, with the ownership epoch the caller
-- drew for this start (its attempt token). Returns the epoch, or no row when the id exists
-- already (the caller then reads the existing row: it is its own when it bears the token).
INSERT INTO dbos.workflow_status (
    workflow_uuid, status, name, class_name, config_name, authenticated_user,
    assumed_role, authenticated_roles, request, executor_id, owner_epoch,
    application_version, application_id, application_name, created_at, updated_at,
    recovery_attempts, queue_name, workflow_timeout_ms, workflow_deadline_epoch_ms,
    started_at_epoch_ms, inputs, parent_workflow_id, serialization, attributes
) VALUES (
    %(workflow_id)s, 'PENDING', %(name)s, %(class_name)s, %(config_name)s, %(authenticated_user)s,
    %(assumed_role)s, %(authenticated_roles)s, NULL, %(executor_id)s, %(owner_epoch)s,
    %(application_version)s, %(application_id)s, %(application_name)s, %(now_ms)s, %(now_ms)s,
    1, NULL, %(timeout_ms)s, %(deadline_ms)s,
    %(now_ms)s, %(inputs)s, %(parent_workflow_id)s, %(serialization)s, %(attributes)s::jsonb
)
ON CONFLICT (workflow_uuid) DO NOTHING
RETURNING owner_epoch
