-- Has pgfleet ever migrated this database? (pgfleet check, without migrating it)
SELECT to_regclass('dbos.pgfleet_migrations') IS NOT NULL AS present
