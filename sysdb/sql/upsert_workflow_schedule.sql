-- Create or replace a schedule's definition (DBOS.apply_schedules). An existing schedule keeps
-- its id, its status (a paused one stays paused) and its last fired tick, and an owner it has;
-- an unowned one takes the writer's.
INSERT INTO dbos.workflow_schedules (
    schedule_id, schedule_name, workflow_name, workflow_class_name, schedule, status, context,
    last_fired_at, automatic_backfill, cron_timezone, queue_name, application_name
) VALUES (
    %(schedule_id)s, %(schedule_name)s, %(workflow_name)s, %(workflow_class_name)s, %(schedule)s,
    %(status)s, %(context)s, %(last_fired_at)s, %(automatic_backfill)s, %(cron_timezone)s,
    %(queue_name)s, %(application_name)s
)
ON CONFLICT (schedule_name) DO UPDATE SET
    workflow_name = EXCLUDED.workflow_name,
    workflow_class_name = EXCLUDED.workflow_class_name,
    schedule = EXCLUDED.schedule,
    context = EXCLUDED.context,
    automatic_backfill = EXCLUDED.automatic_backfill,
    cron_timezone = EXCLUDED.cron_timezone,
    queue_name = EXCLUDED.queue_name,
    application_name = coalesce(dbos.workflow_schedules.application_name, EXCLUDED.application_name)
