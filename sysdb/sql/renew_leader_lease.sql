-- Extend the lease: only the holder, only in its term, only while it has not expired.
UPDATE dbos.pgfleet_leader
SET expires_at = coalesce(%(now)s::timestamptz, now()) + make_interval(secs => %(ttl_sec)s)
WHERE term = %(term)s
  AND executor_id = %(executor_id)s
  AND expires_at > coalesce(%(now)s::timestamptz, now())
RETURNING term
