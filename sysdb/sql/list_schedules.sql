-- Every schedule with the last tick the leader enqueued for it.
SELECT schedule_name, workflow_name, cron, last_tick_epoch_ms
FROM dbos.pgfleet_schedules
ORDER BY schedule_name
