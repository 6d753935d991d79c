-- The web console's workflow list (issue #13) pages newest first by (created_at, workflow_uuid)
-- with a keyset cursor, optionally filtered by name, queue or executor. Without these a filter
-- that matches few of a million finished rows walks the whole created_at index to fill a page;
-- with them a page reads about `limit` entries of one index, whatever the history's size.
-- Status and time filters are served by the existing created_at and status indexes.
CREATE INDEX IF NOT EXISTS pgfleet_workflow_status_name_created
    ON dbos.workflow_status (name, created_at, workflow_uuid);
CREATE INDEX IF NOT EXISTS pgfleet_workflow_status_queue_created
    ON dbos.workflow_status (queue_name, created_at, workflow_uuid) WHERE queue_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS pgfleet_workflow_status_executor_created
    ON dbos.workflow_status (executor_id, created_at, workflow_uuid) WHERE executor_id IS NOT NULL;
