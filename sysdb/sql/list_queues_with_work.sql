-- Which of these queues have work waiting: one cheap statement per idle poll, so an executor
-- with idle queues costs the database almost nothing.
SELECT DISTINCT queue_name
FROM dbos.workflow_status
WHERE queue_name = ANY(%(queue_names)s)
  AND status IN ('ENQUEUED', 'DELAYED')
