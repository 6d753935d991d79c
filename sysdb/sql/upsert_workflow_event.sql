-- Publish a workflow's event (DBOS.setEvent): the latest value per key, plus its history row
-- at the step that set it. Run after the fenced checkpoint in one transaction.
WITH latest AS (
    INSERT INTO dbos.workflow_events (workflow_uuid, key, value, serialization)
    VALUES (%(workflow_id)s, %(key)s, %(value)s, %(serialization)s)
    ON CONFLICT (workflow_uuid, key) DO UPDATE SET value = EXCLUDED.value, serialization = EXCLUDED.serialization
)
INSERT INTO dbos.workflow_events_history (workflow_uuid, function_id, key, value, serialization)
VALUES (%(workflow_id)s, %(function_id)s, %(key)s, %(value)s, %(serialization)s)
ON CONFLICT (workflow_uuid, function_id, key) DO UPDATE SET value = EXCLUDED.value
