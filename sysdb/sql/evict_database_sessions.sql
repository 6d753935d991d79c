-- End every other session on this database before it is emptied (as DROP DATABASE ... WITH
-- (FORCE) would), so that a session holding a lock cannot block the deletes.
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
