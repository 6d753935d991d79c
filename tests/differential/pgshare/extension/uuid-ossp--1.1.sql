-- See uuid-ossp.control: only what DBOS's migration could need, in plain SQL.
CREATE FUNCTION uuid_generate_v4() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS 'SELECT gen_random_uuid()';
