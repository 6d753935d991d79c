-- A SQLAlchemyDatasource's outputs, in its own database, as DBOS 2.22+ keeps them: one row per
-- workflow step, written in the same transaction as the step's effects (or, for a failed
-- step, after its rollback), so that a replay finds the outcome instead of running again.
CREATE TABLE IF NOT EXISTS {schema}.datasource_outputs (
    workflow_id TEXT NOT NULL,
    step_id INT NOT NULL,
    output TEXT,
    error TEXT,
    serialization TEXT,
    created_at BIGINT NOT NULL DEFAULT (EXTRACT(EPOCH FROM now()) * 1000)::bigint,
    PRIMARY KEY (workflow_id, step_id)
)
