-- Checkpoint one step: a single statement that writes only while this executor still owns
-- the workflow with this epoch. The CTE locks the status row FOR SHARE, so a concurrent
-- takeover (an UPDATE of that row) makes this statement wait and then re-check the new row
-- version: after a takeover it inserts nothing. Zero rows inserted means ownership is lost.
WITH owned AS (
    SELECT workflow_uuid
    FROM dbos.workflow_status
    WHERE workflow_uuid = %(workflow_id)s
      AND executor_id = %(executor_id)s
      AND owner_epoch = %(owner_epoch)s
      AND status = 'PENDING'
    FOR SHARE
)
INSERT INTO dbos.operation_outputs (
    workflow_uuid, function_id, function_name, output, error, child_workflow_id,
    started_at_epoch_ms, completed_at_epoch_ms, serialization
)
SELECT workflow_uuid, %(function_id)s, %(function_name)s, %(output)s, %(error)s,
       %(child_workflow_id)s, %(started_at_ms)s, %(completed_at_ms)s, %(serialization)s
FROM owned
