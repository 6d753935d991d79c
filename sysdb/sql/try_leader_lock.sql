-- Try to become the leader candidate: a session advisory lock held on a dedicated connection.
SELECT pg_try_advisory_lock(%(lock_key)s) AS locked
