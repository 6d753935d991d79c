-- How many workflows of the whole database stand in each status (a chaos run's drain).
SELECT status, count(*)::int AS n
FROM dbos.workflow_status
GROUP BY status
