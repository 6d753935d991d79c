-- Fork a workflow: a new workflow with the same function, inputs and attributes, ENQUEUED on
-- %(queue_name)s (the internal queue unless the caller names one), whose steps before
-- start_step are copies of the original's (so they are not run again; a copied child id is
-- replaced as %(replacement_children)s maps it). As in DBOS the timeout is only the caller's
-- (none by default). The original is marked as forked from. No row returned: the original does not
-- exist or the new id is taken.
WITH original AS (
    SELECT * FROM dbos.workflow_status WHERE workflow_uuid = %(workflow_id)s
),
forked AS (
    INSERT INTO dbos.workflow_status (
        workflow_uuid, status, name, class_name, config_name, authenticated_user, assumed_role,
        authenticated_roles, inputs, serialization, queue_name, application_version,
        application_name, created_at, updated_at, recovery_attempts, workflow_timeout_ms,
        forked_from, priority, enqueue_seq, queue_partition_key, attributes
    )
    SELECT %(new_workflow_id)s, 'ENQUEUED', name, class_name, config_name, authenticated_user, assumed_role,
           authenticated_roles, inputs, serialization, %(queue_name)s, %(application_version)s,
           application_name, %(now_ms)s, %(now_ms)s, 0, %(timeout_ms)s::bigint,
           workflow_uuid, 0, nextval('dbos.pgfleet_enqueue_seq'), %(queue_partition_key)s, attributes
    FROM original
    ON CONFLICT (workflow_uuid) DO NOTHING
    RETURNING workflow_uuid
),
copied AS (
    INSERT INTO dbos.operation_outputs (
        workflow_uuid, function_id, function_name, output, error, child_workflow_id,
        started_at_epoch_ms, completed_at_epoch_ms, serialization
    )
    SELECT (SELECT workflow_uuid FROM forked), o.function_id, o.function_name, o.output, o.error,
           coalesce(%(replacement_children)s::jsonb ->> o.child_workflow_id, o.child_workflow_id),
           o.started_at_epoch_ms, o.completed_at_epoch_ms, o.serialization
    FROM dbos.operation_outputs o
    WHERE o.workflow_uuid = %(workflow_id)s
      AND o.function_id < %(start_step)s
      AND EXISTS (SELECT 1 FROM forked)
),
marked AS (
    UPDATE dbos.workflow_status SET was_forked_from = TRUE
    WHERE workflow_uuid = %(workflow_id)s AND EXISTS (SELECT 1 FROM forked)
)
SELECT workflow_uuid FROM forked
