-- The application versions of an application (plus the unclaimed ones; every version when
-- the application is NULL), the latest first (DBOS's order: by version_timestamp).
SELECT version_id, version_name, version_timestamp, created_at, application_name
FROM dbos.application_versions
WHERE %(application_name)s::text IS NULL
   OR application_name IS NULL
   OR application_name = %(application_name)s::text
ORDER BY version_timestamp DESC
LIMIT %(limit)s
