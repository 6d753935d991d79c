-- Schedules of @DBOS.scheduled workflows. Every executor upserts the schedules it can run; the
-- leader enqueues their ticks. Each tick's workflow id is deterministic, so a tick runs once
-- even when two leaders overlap across a term change.
CREATE TABLE dbos.pgfleet_schedules (
    schedule_name TEXT PRIMARY KEY,
    workflow_name TEXT NOT NULL,
    cron TEXT NOT NULL,
    last_tick_epoch_ms BIGINT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
