-- In the application database: the @DBOS.transaction outputs of deleted workflows, so that a
-- workflow started again under a deleted id runs its transactions instead of replaying them.
DELETE FROM dbos.transaction_outputs
WHERE workflow_uuid = ANY(%(workflow_ids)s)
