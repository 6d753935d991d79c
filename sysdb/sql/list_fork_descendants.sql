-- Every workflow forked, directly or through forks of forks, from one of the given workflows
-- (DBOS.send(..., send_to_forks=True) delivers to each of them too). UNION stops at a cycle.
WITH RECURSIVE forks(root, workflow_uuid) AS (
    SELECT s.forked_from, s.workflow_uuid
    FROM dbos.workflow_status s
    WHERE s.forked_from = ANY(%(workflow_ids)s::text[])
  UNION
    SELECT f.root, s.workflow_uuid
    FROM forks f
    JOIN dbos.workflow_status s ON s.forked_from = f.workflow_uuid
)
SELECT root, workflow_uuid AS descendant
FROM forks
WHERE workflow_uuid <> root
ORDER BY root, workflow_uuid
