-- The leader's tick in one round trip: extend its lease (only the holder, only in its term, only
-- while it has not expired) and, only if that renewal took, declare dead every member silent for
-- the member timeout (database clock). The renewal's UPDATE locks the lease row, and the
-- declaration reads its result: a new term committed meanwhile makes the UPDATE re-check the
-- row and match nothing, so a leader that lost its lease declares nobody dead (a fence at least
-- as strong as mark_dead_members.sql's EXISTS on the statement's snapshot).
-- A member row held FOR SHARE by that member's own claim in flight is skipped (declared at the
-- next check), so the leader never waits behind a paused claimer.
-- next_death_sec: when the earliest member still counted alive can be declared dead (its last
-- heartbeat plus the timeout), from now; a heartbeat only moves that later and a new member
-- registers with a fresh one, so the leader need not look again before then. No row at all:
-- the lease is lost.
WITH renewed AS (
    UPDATE dbos.pgfleet_leader
    SET expires_at = coalesce(%(now)s::timestamptz, now()) + make_interval(secs => %(ttl_sec)s)
    WHERE term = %(term)s
      AND executor_id = %(executor_id)s
      AND expires_at > coalesce(%(now)s::timestamptz, now())
    RETURNING term
), silent AS (
    SELECT executor_id
    FROM dbos.pgfleet_executors
    WHERE status IN ('active', 'leaving')
      AND last_heartbeat < coalesce(%(now)s::timestamptz, now()) - make_interval(secs => %(member_timeout_sec)s)
      AND EXISTS (SELECT 1 FROM renewed)
    FOR NO KEY UPDATE SKIP LOCKED
), dead AS (
    UPDATE dbos.pgfleet_executors AS e
    SET status = 'dead'
    FROM silent
    WHERE e.executor_id = silent.executor_id
    RETURNING e.executor_id, e.epoch
), next_death AS (
    SELECT EXTRACT(EPOCH FROM min(last_heartbeat) + make_interval(secs => %(member_timeout_sec)s)
                   - coalesce(%(now)s::timestamptz, now()))::float8 AS next_death_sec
    FROM dbos.pgfleet_executors
    WHERE status IN ('active', 'leaving')
      AND executor_id NOT IN (SELECT executor_id FROM dead)
)
SELECT renewed.term, dead.executor_id, dead.epoch, next_death.next_death_sec
FROM renewed
CROSS JOIN next_death
LEFT JOIN dead ON TRUE
