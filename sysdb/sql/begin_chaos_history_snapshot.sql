-- The first statement of the transaction that loads a chaos run's history: every listing of it
-- reads one snapshot, so they agree with one another even if something still writes.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY
