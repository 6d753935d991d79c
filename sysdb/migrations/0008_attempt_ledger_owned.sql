-- The attempt ledger says whether the database still gave the workflow to the recording owner
-- when its row was written (issue #12). A body whose row says no does not run: the row was
-- written after a takeover (a cut-off member whose insert got through only once the link came
-- back, say), and running the body then would be a stale owner acting.
ALTER TABLE dbos.pgfleet_step_attempts ADD COLUMN owned BOOLEAN NOT NULL DEFAULT TRUE;
