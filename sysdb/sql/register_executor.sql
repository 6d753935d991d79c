-- Register this process as executor_id with a new epoch (incarnation). An existing row is
-- replaced only when it is not a live member: not active, heartbeat older than the member
-- timeout, or the incarnation the caller showed to be gone (replace_epoch: same host, dead pid),
-- or this very registration: the epoch is drawn beforehand (draw_member_epoch), so a retry after
-- a lost reply finds the row its first attempt wrote bearing it.
-- No row returned: another live process holds this executor id.
INSERT INTO dbos.pgfleet_executors AS e (
    executor_id, epoch, host, pid, supervisor_id, application_name, application_version,
    queues, queue_limits, workflow_names, started_at, last_heartbeat, status
) VALUES (
    %(executor_id)s, %(epoch)s, %(host)s, %(pid)s, %(supervisor_id)s,
    %(application_name)s, %(application_version)s, %(queues)s, %(queue_limits)s, %(workflow_names)s, coalesce(%(now)s::timestamptz, now()), coalesce(%(now)s::timestamptz, now()), 'active'
)
ON CONFLICT (executor_id) DO UPDATE
SET epoch = EXCLUDED.epoch,
    host = EXCLUDED.host,
    pid = EXCLUDED.pid,
    supervisor_id = EXCLUDED.supervisor_id,
    application_name = EXCLUDED.application_name,
    application_version = EXCLUDED.application_version,
    queues = EXCLUDED.queues,
    queue_limits = EXCLUDED.queue_limits,
    workflow_names = EXCLUDED.workflow_names,
    started_at = coalesce(%(now)s::timestamptz, now()),
    last_heartbeat = coalesce(%(now)s::timestamptz, now()),
    status = 'active'
WHERE e.status <> 'active'
   OR e.last_heartbeat < coalesce(%(now)s::timestamptz, now()) - make_interval(secs => %(member_timeout_sec)s)
   OR e.epoch = %(replace_epoch)s
   OR e.epoch = EXCLUDED.epoch
RETURNING epoch
