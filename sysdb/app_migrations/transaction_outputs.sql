-- In the application database (when it is not the system database): the outputs of
-- @DBOS.transaction functions, written in the same transaction as their effects, as DBOS keeps
-- them. A transaction whose system-database checkpoint was lost is found here on replay
-- instead of running twice.
CREATE SCHEMA IF NOT EXISTS dbos;
CREATE TABLE IF NOT EXISTS dbos.transaction_outputs (
    workflow_uuid TEXT NOT NULL,
    function_id INTEGER NOT NULL,
    output TEXT,
    error TEXT,
    txn_id TEXT,
    txn_snapshot TEXT NOT NULL,
    executor_id TEXT,
    function_name TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM now()) * 1000.0)::bigint,
    PRIMARY KEY (workflow_uuid, function_id)
);
