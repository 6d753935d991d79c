-- A member's heartbeat, on the database clock. No row: this incarnation was declared dead (or
-- replaced), and must stop executing at once. db_now_ms keeps the member's estimate of the
-- database clock fresh (sysdb/clock.py). leader_executor_id / leader_remaining_sec: the leader
-- lease while it is valid (NULL otherwise), so a follower need not read it on its own.
UPDATE dbos.pgfleet_executors
SET last_heartbeat = coalesce(%(now)s::timestamptz, now()),
    workflow_names = %(workflow_names)s
WHERE executor_id = %(executor_id)s
  AND epoch = %(epoch)s
  AND status IN ('active', 'leaving')
RETURNING status, (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS db_now_ms,
    (SELECT l.executor_id FROM dbos.pgfleet_leader l
     WHERE l.expires_at > coalesce(%(now)s::timestamptz, now())) AS leader_executor_id,
    (SELECT EXTRACT(EPOCH FROM l.expires_at - coalesce(%(now)s::timestamptz, now()))::float8 FROM dbos.pgfleet_leader l
     WHERE l.expires_at > coalesce(%(now)s::timestamptz, now())) AS leader_remaining_sec
