-- Drop a chaos run's scratch system database, ending the sessions still on it.
DROP DATABASE IF EXISTS {dbname} WITH (FORCE)
