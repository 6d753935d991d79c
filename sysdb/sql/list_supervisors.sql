-- Every supervisor with how long ago it last reported (database clock).
SELECT supervisor_id, name, host, pid, app, workers, state, slots, started_at, last_seen,
       EXTRACT(EPOCH FROM now() - last_seen)::float8 AS last_seen_age_sec
FROM dbos.pgfleet_supervisors
ORDER BY supervisor_id
