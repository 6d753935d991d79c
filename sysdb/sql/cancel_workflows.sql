-- Cancel workflows that have not finished (DBOS's cancel_workflows), with their descendants
-- when %(cascade)s: one statement, so a tree is cancelled as of one snapshot. Owners notice at
-- their next checkpoint (every fenced write requires status PENDING) and stop without writing.
-- As in DBOS the row leaves its queue and a cancelled or dead-lettered row is cancelled again.
WITH RECURSIVE tree(workflow_uuid) AS (
    SELECT workflow_uuid FROM dbos.workflow_status WHERE workflow_uuid = ANY(%(workflow_ids)s)
    UNION
    SELECT child.workflow_uuid
    FROM dbos.workflow_status child JOIN tree ON child.parent_workflow_id = tree.workflow_uuid
    WHERE %(cascade)s
)
UPDATE dbos.workflow_status
SET status = 'CANCELLED',
    queue_name = NULL,
    deduplication_id = NULL,
    started_at_epoch_ms = NULL,
    updated_at = %(now_ms)s,
    completed_at = %(now_ms)s
WHERE workflow_uuid IN (SELECT workflow_uuid FROM tree)
  AND status NOT IN ('SUCCESS', 'ERROR')
RETURNING workflow_uuid
