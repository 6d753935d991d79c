-- Schedules matching the filters (a NULL filter matches every row). An application filter also
-- matches unowned schedules, which belong to every application. No ORDER BY: DBOS lists them in
-- the table's order, and so do we.
SELECT schedule_id, schedule_name, workflow_name, workflow_class_name, schedule, status, context,
       last_fired_at, automatic_backfill, cron_timezone, queue_name, application_name
FROM dbos.workflow_schedules
WHERE (%(statuses)s::text[] IS NULL OR status = ANY(%(statuses)s::text[]))
  AND (%(workflow_names)s::text[] IS NULL OR workflow_name = ANY(%(workflow_names)s::text[]))
  AND (%(prefixes)s::text[] IS NULL
       OR EXISTS (SELECT 1 FROM unnest(%(prefixes)s::text[]) AS p(prefix) WHERE starts_with(schedule_name, p.prefix)))
  AND (%(application_names)s::text[] IS NULL
       OR application_name IS NULL OR application_name = ANY(%(application_names)s::text[]))
