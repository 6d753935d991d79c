-- Dead members that still own PENDING workflows: what a sweep must take over.
SELECT e.executor_id, e.epoch
FROM dbos.pgfleet_executors e
WHERE e.status = 'dead'
  AND EXISTS (
      SELECT 1 FROM dbos.workflow_status w
      WHERE w.executor_id = e.executor_id AND w.status = 'PENDING'
  )
