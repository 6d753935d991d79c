-- Enqueue one tick of a schedule on the internal queue and remember it as the latest tick,
-- only while this leader's lease is valid. The deterministic workflow id makes a tick that was
-- enqueued already (by an earlier leader) a no-op.
WITH lease AS (
    SELECT 1 FROM dbos.pgfleet_leader
    WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
),
tick AS (
    INSERT INTO dbos.workflow_status (
        workflow_uuid, status, name, queue_name, inputs, serialization, created_at, updated_at,
        recovery_attempts, priority, application_name, enqueue_seq
    )
    SELECT %(workflow_id)s, 'ENQUEUED', %(workflow_name)s, %(queue_name)s, %(inputs)s, %(serialization)s,
           %(now_ms)s, %(now_ms)s, 0, 0, NULL, nextval('dbos.pgfleet_enqueue_seq')
    FROM lease
    ON CONFLICT (workflow_uuid) DO NOTHING
    RETURNING workflow_uuid
)
UPDATE dbos.pgfleet_schedules
SET last_tick_epoch_ms = GREATEST(coalesce(last_tick_epoch_ms, 0), %(tick_ms)s)
WHERE schedule_name = %(schedule_name)s AND EXISTS (SELECT 1 FROM lease)
RETURNING (SELECT count(*) FROM tick) AS enqueued
