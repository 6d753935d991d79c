-- The schema of a SQLAlchemyDatasource's outputs ({schema}: the datasource's, "dbos" by default).
CREATE SCHEMA IF NOT EXISTS {schema}
