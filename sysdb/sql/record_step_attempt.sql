-- The attempt ledger: a step body is about to start (database time, not the host's).
INSERT INTO dbos.pgfleet_step_attempts (workflow_uuid, function_id, function_name, executor_id, owner_epoch, pid, attempt, started_at)
VALUES (%(workflow_uuid)s, %(function_id)s, %(function_name)s, %(executor_id)s, %(owner_epoch)s, %(pid)s, %(attempt)s, clock_timestamp())
