-- Delete workflows (DBOS's delete_workflows), with their descendants when %(cascade)s. Their
-- steps, messages, events and streams go with them (ON DELETE CASCADE). A running owner finds
-- no row at its next fenced write (each one reads the status row), so it stops and writes
-- nothing: it cannot bring the workflow back.
WITH RECURSIVE tree(workflow_uuid) AS (
    SELECT workflow_uuid FROM dbos.workflow_status WHERE workflow_uuid = ANY(%(workflow_ids)s)
    UNION
    SELECT child.workflow_uuid
    FROM dbos.workflow_status child JOIN tree ON child.parent_workflow_id = tree.workflow_uuid
    WHERE %(cascade)s
)
DELETE FROM dbos.workflow_status
WHERE workflow_uuid IN (SELECT workflow_uuid FROM tree)
RETURNING workflow_uuid
