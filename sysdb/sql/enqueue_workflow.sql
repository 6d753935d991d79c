-- Put a workflow on a queue. ENQUEUED now, or DELAYED until delay_until_epoch_ms. Returns no
-- row when the id exists already; a live deduplication id of the queue raises unique_violation
-- (uq_workflow_status_dedup_id).
INSERT INTO dbos.workflow_status (
    workflow_uuid, status, name, class_name, config_name, authenticated_user,
    assumed_role, authenticated_roles, executor_id, application_version, application_id,
    application_name, created_at, updated_at, recovery_attempts, queue_name,
    workflow_timeout_ms, workflow_deadline_epoch_ms, inputs, parent_workflow_id,
    serialization, deduplication_id, priority, queue_partition_key, delay_until_epoch_ms,
    enqueue_seq, is_debounced, debounce_deadline_epoch_ms, attributes
) VALUES (
    %(workflow_id)s, %(status)s, %(name)s, %(class_name)s, %(config_name)s, %(authenticated_user)s,
    %(assumed_role)s, %(authenticated_roles)s, NULL, %(application_version)s, %(application_id)s,
    %(application_name)s, %(now_ms)s, %(now_ms)s, 0, %(queue_name)s,
    %(timeout_ms)s, %(deadline_ms)s, %(inputs)s, %(parent_workflow_id)s,
    %(serialization)s, %(deduplication_id)s, %(priority)s, %(queue_partition_key)s, %(delay_until_ms)s,
    nextval('dbos.pgfleet_enqueue_seq'), %(is_debounced)s, %(debounce_deadline_ms)s, %(attributes)s::jsonb
)
ON CONFLICT (workflow_uuid) DO NOTHING
RETURNING workflow_uuid
