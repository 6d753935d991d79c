-- The W3C trace carrier a workflow's row records (DBOS keeps it in the attributes, under
-- "dbos.otelContext"), read when its span starts with tracing on (runtime/tracing.py).
SELECT attributes -> 'dbos.otelContext' AS carrier
FROM dbos.workflow_status
WHERE workflow_uuid = %(workflow_id)s
