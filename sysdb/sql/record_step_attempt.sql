-- The attempt ledger: a step body is about to start (database time, not the host's). The row
-- says whether the workflow's row still names this owner (executor and epoch); that row is
-- share-locked for the statement, so a takeover either committed before it (owned is false,
-- and the body must not run) or commits after it (and after this row's time). Never fenced:
-- a refused start is recorded too.
WITH owner AS (
    SELECT 1
    FROM dbos.workflow_status
    WHERE workflow_uuid = %(workflow_uuid)s
      AND executor_id = %(executor_id)s
      AND owner_epoch = %(owner_epoch)s
    FOR SHARE
)
INSERT INTO dbos.pgfleet_step_attempts
    (workflow_uuid, function_id, function_name, executor_id, owner_epoch, pid, attempt, owned, started_at)
VALUES (%(workflow_uuid)s, %(function_id)s, %(function_name)s, %(executor_id)s, %(owner_epoch)s, %(pid)s, %(attempt)s,
        EXISTS (SELECT 1 FROM owner), clock_timestamp())
RETURNING owned
