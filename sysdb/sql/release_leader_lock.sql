-- Give up the leader advisory lock (conceding, or shutting down).
SELECT pg_advisory_unlock(%(lock_key)s) AS released
