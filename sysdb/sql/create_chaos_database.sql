-- A chaos run's scratch system database (composed: the name is an identifier, not a value).
CREATE DATABASE {dbname}
