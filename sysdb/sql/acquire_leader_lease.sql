-- Take the leader lease with a new term, but only once the previous lease has expired: a
-- leader that lost its lock (partitioned) keeps acting until its own lease runs out, so a new
-- leader must not act before then. Run on the session that holds the advisory lock.
-- The term is drawn only when no valid lease is seen: a candidate that holds the lock and
-- tries every tick while an old lease runs out (a restarted leader) must not use up a term per
-- try, or the terms would no longer count elections. The ON CONFLICT guard still decides, on
-- the newest row version (a renewal that committed meanwhile wins, at the cost of one term).
INSERT INTO dbos.pgfleet_leader AS l (
    singleton, term, executor_id, executor_epoch, backend_pid, acquired_at, expires_at
)
SELECT TRUE, nextval('dbos.pgfleet_leader_term_seq'), %(executor_id)s, %(executor_epoch)s,
       pg_backend_pid(), coalesce(%(now)s::timestamptz, now()), coalesce(%(now)s::timestamptz, now()) + make_interval(secs => %(ttl_sec)s)
WHERE NOT EXISTS (
    SELECT 1 FROM dbos.pgfleet_leader
    WHERE singleton AND expires_at >= coalesce(%(now)s::timestamptz, now())
)
ON CONFLICT (singleton) DO UPDATE
SET term = EXCLUDED.term,
    executor_id = EXCLUDED.executor_id,
    executor_epoch = EXCLUDED.executor_epoch,
    backend_pid = EXCLUDED.backend_pid,
    acquired_at = EXCLUDED.acquired_at,
    expires_at = EXCLUDED.expires_at
WHERE l.expires_at < coalesce(%(now)s::timestamptz, now())
RETURNING term
