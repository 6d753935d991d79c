-- The attempt ledger (issue #12): with `attempt_ledger` on, one row per start of a step body,
-- written right before the body runs (its own autocommitted statement, so it survives a step
-- that fails and a process that is killed). It lets a checker prove, for any app, that a
-- completed step never ran again and that a fenced owner started no body after a takeover.
-- Not fenced and without foreign keys: a row must be written even by a stale owner.
CREATE TABLE dbos.pgfleet_step_attempts (
    id BIGSERIAL PRIMARY KEY,
    workflow_uuid TEXT NOT NULL,
    function_id INTEGER NOT NULL,
    function_name TEXT NOT NULL,
    executor_id TEXT NOT NULL,
    owner_epoch BIGINT NOT NULL,
    pid INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX pgfleet_step_attempts_workflow ON dbos.pgfleet_step_attempts (workflow_uuid, function_id);
