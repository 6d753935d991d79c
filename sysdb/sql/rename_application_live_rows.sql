-- Give new_name the rows old_name owns (and, with adopt_unclaimed, the rows nobody owns), in
-- one transaction for what must move together: queues, schedules, versions and the workflows
-- still in flight (a half-renamed application would not find its own work). Terminal
-- workflows and steps follow in batches (rename_application_terminal_batch).
WITH queues AS (
    UPDATE dbos.queues SET application_name = %(new_name)s
    WHERE application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL)
    RETURNING 1
),
schedules AS (
    UPDATE dbos.workflow_schedules SET application_name = %(new_name)s
    WHERE application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL)
    RETURNING 1
),
versions AS (
    UPDATE dbos.application_versions SET application_name = %(new_name)s
    WHERE application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL)
    RETURNING 1
),
workflows AS (
    UPDATE dbos.workflow_status SET application_name = %(new_name)s
    WHERE (application_name = %(old_name)s OR (%(adopt_unclaimed)s AND application_name IS NULL))
      AND status IN ('PENDING', 'ENQUEUED', 'DELAYED')
    RETURNING 1
)
SELECT (SELECT count(*) FROM queues) AS queues,
       (SELECT count(*) FROM schedules) AS schedules,
       (SELECT count(*) FROM versions) AS versions,
       (SELECT count(*) FROM workflows) AS workflows
