-- How many of the given workflows stand in each status (a chaos run's progress line).
SELECT status, count(*)::int AS n
FROM dbos.workflow_status
WHERE workflow_uuid = ANY(%(workflow_ids)s::text[])
GROUP BY status
