-- End the backend of a leader whose lease expired but whose session still holds the leader
-- lock (a partitioned host whose TCP connection has not died yet). Only a backend that really
-- holds that advisory lock is ended, never one that reused the pid.
SELECT pg_terminate_backend(l.backend_pid) AS terminated
FROM dbos.pgfleet_leader l
WHERE l.expires_at < coalesce(%(now)s::timestamptz, now())
  AND l.backend_pid IS NOT NULL
  AND l.backend_pid <> pg_backend_pid()
  AND EXISTS (
      SELECT 1 FROM pg_locks k
      WHERE k.locktype = 'advisory' AND k.granted AND k.pid = l.backend_pid
        AND k.objsubid = 1
        AND ((k.classid::bigint << 32) | k.objid::bigint) = %(lock_key)s
  )
