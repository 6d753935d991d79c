-- Create a database-backed schedule (DBOS.create_schedule). Returns no row when a schedule of
-- that name exists already (the caller says so, as DBOS does).
INSERT INTO dbos.workflow_schedules (
    schedule_id, schedule_name, workflow_name, workflow_class_name, schedule, status, context,
    last_fired_at, automatic_backfill, cron_timezone, queue_name, application_name
) VALUES (
    %(schedule_id)s, %(schedule_name)s, %(workflow_name)s, %(workflow_class_name)s, %(schedule)s,
    %(status)s, %(context)s, %(last_fired_at)s, %(automatic_backfill)s, %(cron_timezone)s,
    %(queue_name)s, %(application_name)s
)
ON CONFLICT (schedule_name) DO NOTHING
RETURNING schedule_id
