-- Record an application version at launch, as DBOS does: insert it owned by this application,
-- or claim it when it exists unclaimed. An existing row keeps its timestamp (a restart of an
-- old version does not make it the latest). Returns the row's previous owner, so the caller
-- raises when another application registered this version name.
WITH existing AS (
    SELECT application_name FROM dbos.application_versions WHERE version_name = %(version_name)s
),
claimed AS (
    UPDATE dbos.application_versions
    SET application_name = %(application_name)s
    WHERE version_name = %(version_name)s
      AND application_name IS NULL
      AND %(application_name)s::text IS NOT NULL
    RETURNING 1
),
inserted AS (
    INSERT INTO dbos.application_versions (version_id, version_name, application_name)
    SELECT %(version_id)s, %(version_name)s, %(application_name)s
    WHERE NOT EXISTS (SELECT 1 FROM existing)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM existing) AS existed,
       (SELECT application_name FROM existing) AS previous_owner,
       (SELECT count(*) FROM claimed) + (SELECT count(*) FROM inserted) AS written
