-- Make a version the latest: its timestamp becomes now (the database's clock, which every
-- host shares). An unclaimed row is claimed by the caller's application; a row another
-- application owns is left alone, and the caller raises on the previous owner this returns.
WITH existing AS (
    SELECT application_name FROM dbos.application_versions WHERE version_name = %(version_name)s
),
promoted AS (
    UPDATE dbos.application_versions
    SET version_timestamp = (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
        application_name = coalesce(application_name, %(application_name)s::text)
    WHERE version_name = %(version_name)s
      AND (application_name IS NULL OR %(application_name)s::text IS NULL
           OR application_name = %(application_name)s::text)
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM existing) AS existed,
       (SELECT application_name FROM existing) AS previous_owner,
       (SELECT count(*) FROM promoted) AS written
