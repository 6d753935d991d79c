-- Every known member with its heartbeat age (database clock) and how many workflows it runs.
SELECT e.executor_id, e.epoch, e.host, e.pid, e.supervisor_id, e.application_name,
       e.application_version, e.queues, e.status, e.started_at, e.last_heartbeat,
       EXTRACT(EPOCH FROM coalesce(%(now)s::timestamptz, now()) - e.last_heartbeat)::float8 AS heartbeat_age_sec,
       (SELECT count(*) FROM dbos.workflow_status w
         WHERE w.executor_id = e.executor_id AND w.status = 'PENDING') AS running_workflows
FROM dbos.pgfleet_executors e
ORDER BY e.executor_id
