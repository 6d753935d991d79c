-- A datasource step's outcome, inside its transaction. No row back: another execution of the
-- workflow recorded this step first (its outcome is the one that counts).
INSERT INTO {schema}.datasource_outputs (workflow_id, step_id, output, error, serialization)
VALUES (%(workflow_id)s, %(step_id)s, %(output)s, %(error)s, %(serialization)s)
ON CONFLICT (workflow_id, step_id) DO NOTHING
RETURNING workflow_id
