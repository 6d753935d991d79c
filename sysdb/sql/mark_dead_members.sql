-- Declare dead every member whose last heartbeat is older than the member timeout (database
-- clock, so skewed hosts agree). Done by the leader, fenced by its lease.
-- A member row held FOR SHARE by that member's own claim in flight is skipped (it is declared
-- dead at the next tick, after the claim), so the leader never waits behind a paused claimer.
UPDATE dbos.pgfleet_executors AS e
SET status = 'dead'
FROM (
    SELECT executor_id
    FROM dbos.pgfleet_executors
    WHERE status IN ('active', 'leaving')
      AND last_heartbeat < coalesce(%(now)s::timestamptz, now()) - make_interval(secs => %(member_timeout_sec)s)
    FOR NO KEY UPDATE SKIP LOCKED
) AS silent
WHERE e.executor_id = silent.executor_id
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
  )
RETURNING e.executor_id, e.epoch
