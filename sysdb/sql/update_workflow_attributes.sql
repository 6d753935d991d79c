-- Replace a workflow's custom attributes (DBOS's update_workflow_attributes; NULL clears them).
UPDATE dbos.workflow_status
SET attributes = %(attributes)s::jsonb,
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
RETURNING workflow_uuid
