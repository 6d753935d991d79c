-- The leader fires one tick of a database-backed schedule: it enqueues the tick's run and
-- records the tick as the schedule's last fired, only while its lease of this term is valid and
-- the schedule is still ACTIVE with the definition the leader read (the row lock makes a pause
-- or a change that commits first win). The run's id is derived from schedule and tick, so a
-- tick an earlier leader fired already is not enqueued again.
WITH lease AS (
    SELECT 1 FROM dbos.pgfleet_leader
    WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
),
schedule AS (
    SELECT schedule_id FROM dbos.workflow_schedules
    WHERE schedule_id = %(schedule_id)s AND status = 'ACTIVE' AND EXISTS (SELECT 1 FROM lease)
      AND schedule = %(cron)s AND workflow_name = %(workflow_name)s AND context = %(context)s
      AND workflow_class_name IS NOT DISTINCT FROM %(class_name)s
      AND cron_timezone IS NOT DISTINCT FROM %(cron_timezone)s
      AND queue_name IS NOT DISTINCT FROM %(schedule_queue_name)s
    FOR UPDATE
),
tick AS (
    INSERT INTO dbos.workflow_status (
        workflow_uuid, status, name, class_name, queue_name, inputs, serialization, schedule_name,
        application_name, created_at, updated_at, recovery_attempts, priority, enqueue_seq
    )
    SELECT %(workflow_id)s, 'ENQUEUED', %(workflow_name)s, %(class_name)s, %(queue_name)s, %(inputs)s, NULL,
           %(schedule_name)s, %(application_name)s, %(now_ms)s, %(now_ms)s, 0, 0, nextval('dbos.pgfleet_enqueue_seq')
    FROM schedule
    ON CONFLICT (workflow_uuid) DO NOTHING
    RETURNING workflow_uuid
),
fired AS (
    UPDATE dbos.workflow_schedules SET last_fired_at = %(last_fired_at)s
    WHERE schedule_id IN (SELECT schedule_id FROM schedule)
    RETURNING schedule_id
)
SELECT EXISTS (SELECT 1 FROM lease) AS leading,
       EXISTS (SELECT 1 FROM fired) AS active,
       (SELECT count(*) FROM tick) AS enqueued
