-- Does the server have this database? Asked on the server's "postgres" database when the
-- system database refused a connection (pgfleet check).
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %(dbname)s) AS present
