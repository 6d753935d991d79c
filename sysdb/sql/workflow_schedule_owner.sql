-- The application that owns a schedule (a row with NULL: nobody does; no row: no schedule),
-- locked until the writer's transaction ends, so that its check and its write agree.
SELECT application_name FROM dbos.workflow_schedules
WHERE schedule_name = %(schedule_name)s
FOR UPDATE
