-- Remove a chaos run's instrumentation: its triggers on pgfleet's tables, then its schema (the
-- logs and the trigger functions). Idempotent, like the install.
SELECT pg_advisory_xact_lock(hashtext('pgfleet_chaos.install'));
DROP TRIGGER IF EXISTS pgfleet_chaos_ownership_insert ON dbos.workflow_status;
DROP TRIGGER IF EXISTS pgfleet_chaos_ownership_update ON dbos.workflow_status;
DROP TRIGGER IF EXISTS pgfleet_chaos_finish ON dbos.workflow_status;
DROP TRIGGER IF EXISTS pgfleet_chaos_output ON dbos.operation_outputs;
DROP TRIGGER IF EXISTS pgfleet_chaos_event ON dbos.workflow_events;
DROP TRIGGER IF EXISTS pgfleet_chaos_stream ON dbos.streams;
DROP SCHEMA IF EXISTS pgfleet_chaos CASCADE;
