-- Declare dead every member whose last heartbeat is older than the member timeout (database
-- clock, so skewed hosts agree). Done by the leader, fenced by its lease.
UPDATE dbos.pgfleet_executors
SET status = 'dead'
WHERE status IN ('active', 'leaving')
  AND last_heartbeat < now() - make_interval(secs => %(member_timeout_sec)s)
  AND EXISTS (
      SELECT 1 FROM dbos.pgfleet_leader
      WHERE term = %(term)s AND executor_id = %(leader_id)s AND expires_at > now()
  )
RETURNING executor_id, epoch
