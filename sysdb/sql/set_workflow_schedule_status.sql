-- Pause (PAUSED) or resume (ACTIVE) a schedule; nothing when it does not exist.
UPDATE dbos.workflow_schedules SET status = %(status)s
WHERE schedule_name = %(schedule_name)s
