-- Which of these workflow ids exist (resume_workflows refuses the whole call if one is missing).
SELECT workflow_uuid FROM dbos.workflow_status WHERE workflow_uuid = ANY(%(workflow_ids)s)
