-- Enqueue one run of a schedule (a trigger, or a backfilled tick). Its id is derived from the
-- schedule and the tick, so a run that exists already (fired by the leader, or an earlier
-- backfill) is left alone: no row is returned then.
INSERT INTO dbos.workflow_status (
    workflow_uuid, status, name, class_name, queue_name, inputs, serialization, schedule_name,
    application_name, created_at, updated_at, recovery_attempts, priority, enqueue_seq
) VALUES (
    %(workflow_id)s, 'ENQUEUED', %(workflow_name)s, %(class_name)s, %(queue_name)s, %(inputs)s, NULL,
    %(schedule_name)s, %(application_name)s, %(now_ms)s, %(now_ms)s, 0, 0, nextval('dbos.pgfleet_enqueue_seq')
)
ON CONFLICT (workflow_uuid) DO NOTHING
RETURNING workflow_uuid
