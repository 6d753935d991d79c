-- Executor ids that own PENDING workflows but never registered as a pgfleet member (a DBOS
-- process, such as DBOS's default executor "local", before the switch to pgfleet). Nobody
-- recovers their rows on their own: pgfleet takes over only members it saw die. Read once per
-- launch, through the partial index on PENDING rows.
SELECT w.executor_id, count(*) AS pending
FROM dbos.workflow_status w
WHERE w.status = 'PENDING'
  AND w.executor_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM dbos.pgfleet_executors e WHERE e.executor_id = w.executor_id)
GROUP BY w.executor_id
ORDER BY w.executor_id
LIMIT 20
