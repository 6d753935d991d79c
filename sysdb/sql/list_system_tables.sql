-- The tables of a system schema (reset_system_database empties each but the migration records).
SELECT tablename FROM pg_tables WHERE schemaname = %(schema)s ORDER BY tablename
