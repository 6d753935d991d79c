-- The backends of this database whose sessions pgfleet opened (application_name prefix), for
-- a chaos run's terminate-backends fault.
SELECT pid, application_name FROM pg_stat_activity
WHERE datname = current_database() AND application_name LIKE %(prefix)s || '%%' AND pid <> pg_backend_pid()
ORDER BY pid
