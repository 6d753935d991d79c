-- Serialise the creation of a datasource's table: a fleet's executors create their datasources
-- at once, and two concurrent CREATE TABLE IF NOT EXISTS may still collide in the catalog.
SELECT pg_advisory_xact_lock(hashtext('pgfleet.datasource_outputs'))
