-- Start a child workflow from a running parent in one statement: the parent's step row
-- (naming the child) is written only while the parent is still owned with this epoch, and
-- the child's status row is created only together with it. child_epoch is NULL when the
-- child id existed already (replay after a crash between the two, or an explicit id). The
-- child's epoch is drawn by the caller beforehand (its attempt token, see draw_epochs).
WITH owned AS (
    SELECT workflow_uuid
    FROM dbos.workflow_status
    WHERE workflow_uuid = %(parent_workflow_id)s
      AND executor_id = %(executor_id)s
      AND owner_epoch = %(parent_owner_epoch)s
      AND status = 'PENDING'
    FOR SHARE
),
-- The id held by another function (or class, or instance): a conflict, which starts nothing
-- and records no start (as DBOS: the caller records the conflict as the call's outcome).
conflicting AS (
    SELECT 1
    FROM dbos.workflow_status
    WHERE workflow_uuid = %(workflow_id)s
      AND (name, class_name, config_name) IS DISTINCT FROM (%(name)s, %(class_name)s, %(config_name)s)
),
parent_step AS (
    INSERT INTO dbos.operation_outputs (
        workflow_uuid, function_id, function_name, child_workflow_id,
        started_at_epoch_ms, completed_at_epoch_ms, serialization
    )
    SELECT workflow_uuid, %(function_id)s, %(name)s, %(workflow_id)s,
           %(now_ms)s, %(now_ms)s, %(serialization)s
    FROM owned
    WHERE NOT EXISTS (SELECT 1 FROM conflicting)
    RETURNING 1
),
child AS (
    INSERT INTO dbos.workflow_status (
        workflow_uuid, status, name, class_name, config_name, authenticated_user,
        assumed_role, authenticated_roles, executor_id, owner_epoch,
        application_version, application_id, application_name, created_at, updated_at,
        recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms,
        started_at_epoch_ms, inputs, parent_workflow_id, serialization, attributes
    )
    SELECT %(workflow_id)s, 'PENDING', %(name)s, %(class_name)s, %(config_name)s, %(authenticated_user)s,
           %(assumed_role)s, %(authenticated_roles)s, %(executor_id)s, %(owner_epoch)s,
           %(application_version)s, %(application_id)s, %(application_name)s, %(now_ms)s, %(now_ms)s,
           1, %(timeout_ms)s, %(deadline_ms)s,
           %(now_ms)s, %(inputs)s, %(parent_workflow_id)s, %(serialization)s, %(attributes)s::jsonb
    FROM owned
    ON CONFLICT (workflow_uuid) DO NOTHING
    RETURNING owner_epoch
)
SELECT (SELECT count(*) FROM owned) AS parent_owned,
       (SELECT owner_epoch FROM child) AS child_epoch
