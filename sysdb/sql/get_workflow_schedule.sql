-- One schedule by name.
SELECT schedule_id, schedule_name, workflow_name, workflow_class_name, schedule, status, context,
       last_fired_at, automatic_backfill, cron_timezone, queue_name, application_name
FROM dbos.workflow_schedules
WHERE schedule_name = %(schedule_name)s
