-- One workflow's status row: everything a handle, recovery or introspection needs.
SELECT workflow_uuid, status, name, class_name, config_name, authenticated_user,
       assumed_role, authenticated_roles, output, error, executor_id, owner_epoch,
       created_at, updated_at, application_version, application_id, application_name,
       recovery_attempts, queue_name, workflow_timeout_ms, workflow_deadline_epoch_ms,
       inputs, started_at_epoch_ms, deduplication_id, priority, queue_partition_key,
       forked_from, was_forked_from, parent_workflow_id, serialization,
       delay_until_epoch_ms, completed_at, attributes, schedule_name
FROM dbos.workflow_status
WHERE workflow_uuid = %(workflow_id)s
