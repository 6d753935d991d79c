-- pgfleet's fencing token. Every PENDING workflow row names its owner (executor_id) and an
-- ownership epoch drawn from a logged sequence: a fresh one at every start, recovery, claim
-- and takeover. Every checkpoint and the final status write match on both, so an owner that
-- lost the workflow (declared dead, paused, partitioned) can never write again.
ALTER TABLE dbos.workflow_status ADD COLUMN IF NOT EXISTS owner_epoch BIGINT;

-- A sequence is WAL-logged, so crash recovery can never hand out an epoch twice.
CREATE SEQUENCE IF NOT EXISTS dbos.pgfleet_epoch_seq;

-- Recovery and takeover look up the PENDING workflows of one executor.
CREATE INDEX IF NOT EXISTS pgfleet_workflow_status_pending_owner
    ON dbos.workflow_status (executor_id)
    WHERE status = 'PENDING';
