-- One of the given workflows that is no longer PENDING, ENQUEUED or DELAYED, if any
-- (DBOS.wait_first). A workflow id that does not exist never finishes, as in DBOS.
SELECT workflow_uuid
FROM dbos.workflow_status
WHERE workflow_uuid = ANY(%(workflow_ids)s::text[])
  AND status NOT IN ('PENDING', 'ENQUEUED', 'DELAYED')
LIMIT 1
