-- Every workflow row as it stands: its outcome as stored (serialized), its times in seconds, and
-- the workflow that started or enqueued it (the checker follows an app's workflow to its children).
SELECT workflow_uuid, coalesce(name, '') AS name, coalesce(status, '') AS status, queue_name, executor_id, output, error,
       serialization, created_at / 1000.0::float8 AS created_at, updated_at / 1000.0::float8 AS updated_at,
       parent_workflow_id
FROM dbos.workflow_status
ORDER BY created_at, workflow_uuid
