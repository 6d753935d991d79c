-- A chaos run's instrumentation of its (scratch) system database, in a schema of its own: never
-- part of pgfleet's migrations. Deferred constraint triggers log, as each transaction commits
-- (clock_timestamp() read then, after all of its statements), every change of a workflow row's
-- (status, executor_id, owner_epoch) and every write made on a workflow's behalf, each with the
-- writing session's application_name and the workflow row's owner as the trigger reads it at
-- commit. Idempotent: every object is created only if missing (constraint triggers have no
-- CREATE OR REPLACE), under a transaction lock so two installs at once do not collide.
SELECT pg_advisory_xact_lock(hashtext('pgfleet_chaos.install'));

CREATE SCHEMA IF NOT EXISTS pgfleet_chaos;

CREATE TABLE IF NOT EXISTS pgfleet_chaos.ownership_log (
    seq BIGSERIAL PRIMARY KEY,
    workflow_uuid TEXT NOT NULL,
    status TEXT,
    executor_id TEXT,
    owner_epoch BIGINT,
    queue_name TEXT,
    queue_partition_key TEXT,
    rate_limited BOOLEAN NOT NULL,
    started_at_epoch_ms BIGINT,
    writer TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS pgfleet_chaos.write_log (
    seq BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('output', 'event', 'stream', 'finish')),
    workflow_uuid TEXT NOT NULL,
    function_id INTEGER,
    function_name TEXT,
    key TEXT,
    writer TEXT NOT NULL,
    row_status TEXT,
    row_executor_id TEXT,
    row_owner_epoch BIGINT,
    at TIMESTAMPTZ NOT NULL
);
-- The child an output names (a start or enqueue of a child workflow): the checker reports a child
-- that never got a row. Added to a log an earlier install made, too.
ALTER TABLE pgfleet_chaos.write_log ADD COLUMN IF NOT EXISTS child_workflow_id TEXT;

-- NEW is the row as the statement left it; the time is the commit's.
CREATE OR REPLACE FUNCTION pgfleet_chaos.log_ownership() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO pgfleet_chaos.ownership_log (
        workflow_uuid, status, executor_id, owner_epoch, queue_name, queue_partition_key, rate_limited,
        started_at_epoch_ms, writer, at
    ) VALUES (
        NEW.workflow_uuid, NEW.status, NEW.executor_id, NEW.owner_epoch, NEW.queue_name, NEW.queue_partition_key,
        NEW.rate_limited, NEW.started_at_epoch_ms, current_setting('application_name'), clock_timestamp()
    );
    RETURN NULL;
END;
$$;

-- TG_ARGV[0] is the kind. The workflow row is read now, at commit (a plain read: it locks
-- nothing); a finish records the owner that finished it (OLD), not what the row says after.
CREATE OR REPLACE FUNCTION pgfleet_chaos.log_write() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO pg_catalog, pg_temp
AS $$
DECLARE
    kind TEXT := TG_ARGV[0];
    fid INTEGER;
    fname TEXT;
    child TEXT;
    k TEXT;
    r_status TEXT;
    r_executor TEXT;
    r_epoch BIGINT;
BEGIN
    IF kind = 'finish' THEN
        r_status := NEW.status;
        r_executor := OLD.executor_id;
        r_epoch := OLD.owner_epoch;
    ELSE
        SELECT w.status, w.executor_id, w.owner_epoch INTO r_status, r_executor, r_epoch
        FROM dbos.workflow_status w WHERE w.workflow_uuid = NEW.workflow_uuid;
    END IF;
    IF kind = 'output' THEN
        fid := NEW.function_id;
        fname := NEW.function_name;
        child := NEW.child_workflow_id;
    ELSIF kind = 'stream' THEN
        fid := NEW.function_id;
        k := NEW.key;
    ELSIF kind = 'event' THEN
        k := NEW.key;
    END IF;
    INSERT INTO pgfleet_chaos.write_log (
        kind, workflow_uuid, function_id, function_name, key, writer, row_status, row_executor_id, row_owner_epoch, at,
        child_workflow_id
    ) VALUES (
        kind, NEW.workflow_uuid, fid, fname, k, current_setting('application_name'), r_status, r_executor, r_epoch,
        clock_timestamp(), child
    );
    RETURN NULL;
END;
$$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'dbos.workflow_status'::regclass AND tgname = 'pgfleet_chaos_ownership_insert') THEN
        CREATE CONSTRAINT TRIGGER pgfleet_chaos_ownership_insert AFTER INSERT ON dbos.workflow_status
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgfleet_chaos.log_ownership();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'dbos.workflow_status'::regclass AND tgname = 'pgfleet_chaos_ownership_update') THEN
        CREATE CONSTRAINT TRIGGER pgfleet_chaos_ownership_update AFTER UPDATE ON dbos.workflow_status
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            WHEN ((OLD.status, OLD.executor_id, OLD.owner_epoch) IS DISTINCT FROM (NEW.status, NEW.executor_id, NEW.owner_epoch))
            EXECUTE FUNCTION pgfleet_chaos.log_ownership();
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'dbos.workflow_status'::regclass AND tgname = 'pgfleet_chaos_finish') THEN
        CREATE CONSTRAINT TRIGGER pgfleet_chaos_finish AFTER UPDATE ON dbos.workflow_status
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            WHEN (NEW.status IN ('SUCCESS', 'ERROR') AND OLD.status IS DISTINCT FROM NEW.status)
            EXECUTE FUNCTION pgfleet_chaos.log_write('finish');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'dbos.operation_outputs'::regclass AND tgname = 'pgfleet_chaos_output') THEN
        CREATE CONSTRAINT TRIGGER pgfleet_chaos_output AFTER INSERT ON dbos.operation_outputs
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgfleet_chaos.log_write('output');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'dbos.workflow_events'::regclass AND tgname = 'pgfleet_chaos_event') THEN
        CREATE CONSTRAINT TRIGGER pgfleet_chaos_event AFTER INSERT OR UPDATE ON dbos.workflow_events
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgfleet_chaos.log_write('event');
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'dbos.streams'::regclass AND tgname = 'pgfleet_chaos_stream') THEN
        CREATE CONSTRAINT TRIGGER pgfleet_chaos_stream AFTER INSERT ON dbos.streams
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pgfleet_chaos.log_write('stream');
    END IF;
END;
$$;
