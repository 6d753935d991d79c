-- Supervisors report their worker slots here (so a child that keeps crashing before it ever
-- registers is still visible in `pgfleet status`), and members record their queues' limits.
CREATE TABLE dbos.pgfleet_supervisors (
    supervisor_id TEXT PRIMARY KEY,     -- "<name>@<host>"
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    app TEXT NOT NULL,
    workers INTEGER NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    state TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'draining', 'stopped')),
    slots JSONB NOT NULL DEFAULT '[]'
);

ALTER TABLE dbos.pgfleet_executors ADD COLUMN queue_limits JSONB;

-- Enqueue order within one millisecond: created_at is in milliseconds, so workflows enqueued in
-- the same millisecond need a tiebreaker that grows with each enqueue. Nullable and without a
-- default, so adding it rewrites nothing; rows enqueued by other clients sort after ours.
CREATE SEQUENCE dbos.pgfleet_enqueue_seq;
ALTER TABLE dbos.workflow_status ADD COLUMN enqueue_seq BIGINT;
