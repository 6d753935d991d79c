-- Re-own up to batch_size more workflows (terminal ones: the live ones moved already) and
-- then the steps of up to batch_size more workflows; NULL batch_size moves all at once. A
-- moved row no longer matches, so repeating this until it moves nothing moves everything.
WITH workflows AS (
    UPDATE dbos.workflow_status SET application_name = %(new_name)s
    WHERE workflow_uuid IN (
        SELECT workflow_uuid FROM dbos.workflow_status
        WHERE application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL)
        LIMIT %(batch_size)s
    )
    RETURNING 1
),
steps AS (
    UPDATE dbos.operation_outputs SET application_name = %(new_name)s
    WHERE workflow_uuid IN (
        SELECT DISTINCT workflow_uuid FROM dbos.operation_outputs
        WHERE application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL)
        LIMIT %(batch_size)s
    )
    AND (application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL))
    RETURNING 1
)
SELECT (SELECT count(*) FROM workflows) AS workflows, (SELECT count(*) FROM steps) AS steps
