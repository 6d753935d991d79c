-- Delete a schedule; nothing when it does not exist. Workflows it started stay.
DELETE FROM dbos.workflow_schedules
WHERE schedule_name = %(schedule_name)s
