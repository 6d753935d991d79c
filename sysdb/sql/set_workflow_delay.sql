-- Move a DELAYED workflow's release time (DBOS's set_workflow_delay; any other status is left
-- alone). An absolute %(until_ms)s, or %(delay_ms)s counted on the database clock, the clock the
-- leader's promotion of delayed workflows compares with.
UPDATE dbos.workflow_status
SET delay_until_epoch_ms = coalesce(
        %(until_ms)s::bigint,
        (extract(epoch FROM statement_timestamp()) * 1000)::bigint + %(delay_ms)s::bigint),
    updated_at = %(now_ms)s
WHERE workflow_uuid = %(workflow_id)s
  AND status = 'DELAYED'
RETURNING workflow_uuid
