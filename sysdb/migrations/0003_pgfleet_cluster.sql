-- pgfleet's cluster: executor membership, the leader lease, and logs of takeovers and leader
-- actions. All logged tables, and epochs and terms come from sequences: crash recovery can
-- never hand out an old epoch or term again.

-- One row per executor id. epoch is the incarnation: new at every start, so a restarted or
-- re-registered process never looks like the one before it.
CREATE SEQUENCE dbos.pgfleet_member_epoch_seq;
CREATE TABLE dbos.pgfleet_executors (
    executor_id TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    supervisor_id TEXT,
    application_name TEXT,
    application_version TEXT,
    queues TEXT[],                 -- NULL: every queue it declares
    workflow_names TEXT[] NOT NULL DEFAULT '{}',  -- what it can run (takeover assigns by this)
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
    status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'leaving', 'dead'))
);

-- The leader lease: a single row. term comes from a sequence and only grows.
CREATE SEQUENCE dbos.pgfleet_leader_term_seq;
CREATE TABLE dbos.pgfleet_leader (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    term BIGINT NOT NULL,
    executor_id TEXT NOT NULL,
    executor_epoch BIGINT NOT NULL,
    backend_pid INTEGER,           -- the session holding the advisory lock
    acquired_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

-- Every workflow moved off a dead or leaving executor: who lost it, where it went, who moved it.
CREATE TABLE dbos.pgfleet_takeovers (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    workflow_uuid TEXT NOT NULL,
    from_executor_id TEXT NOT NULL,
    from_epoch BIGINT,
    to_executor_id TEXT,           -- NULL: returned to its queue
    to_epoch BIGINT,
    requeued_to TEXT,
    by_executor_id TEXT NOT NULL,
    leader_term BIGINT
);
CREATE INDEX pgfleet_takeovers_at ON dbos.pgfleet_takeovers (at);
CREATE INDEX pgfleet_takeovers_workflow ON dbos.pgfleet_takeovers (workflow_uuid);

-- What each leader did, written only while its lease (holder and term) is valid: at most one
-- leader acts in any term.
CREATE TABLE dbos.pgfleet_leader_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    term BIGINT NOT NULL,
    executor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    detail JSONB
);
CREATE INDEX pgfleet_leader_log_term ON dbos.pgfleet_leader_log (term);

-- The leader cancels workflows past their deadline; only rows with a deadline are indexed.
CREATE INDEX pgfleet_workflow_status_deadline
    ON dbos.workflow_status (workflow_deadline_epoch_ms)
    WHERE workflow_deadline_epoch_ms IS NOT NULL AND status IN ('PENDING', 'ENQUEUED');
