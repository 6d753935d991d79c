-- The latest pgfleet migration applied (read only after schema_migrations_present).
SELECT coalesce(max(version), 0) AS version FROM dbos.pgfleet_migrations
