-- Declare (or update) a schedule. A new schedule starts ticking from now (no backfill); an
-- existing one keeps the last tick enqueued for it.
INSERT INTO dbos.pgfleet_schedules (schedule_name, workflow_name, cron, last_tick_epoch_ms)
VALUES (%(schedule_name)s, %(workflow_name)s, %(cron)s, %(now_ms)s)
ON CONFLICT (schedule_name) DO UPDATE
SET workflow_name = EXCLUDED.workflow_name, cron = EXCLUDED.cron, updated_at = now()
