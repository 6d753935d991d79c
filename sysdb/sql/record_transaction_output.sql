-- Inside a @DBOS.transaction on the application database: its output, committed with its
-- effects. A second writer of the same position fails on the primary key and rolls back.
INSERT INTO dbos.transaction_outputs (
    workflow_uuid, function_id, output, error, txn_id, txn_snapshot, executor_id, function_name, created_at
) VALUES (
    %(workflow_id)s, %(function_id)s, %(output)s, NULL, pg_current_xact_id_if_assigned()::text,
    pg_current_snapshot()::text, %(executor_id)s, %(function_name)s, %(now_ms)s
)
