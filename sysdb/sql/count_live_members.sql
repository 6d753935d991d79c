-- Executors still in the fleet on this database (reset_system_database refuses to empty it
-- under them): active or leaving, with a heartbeat within the member timeout.
SELECT count(*) AS live
FROM dbos.pgfleet_executors
WHERE status IN ('active', 'leaving')
  AND last_heartbeat > now() - make_interval(secs => %(member_timeout_sec)s)
