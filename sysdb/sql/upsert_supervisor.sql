-- A supervisor's report of itself and its worker slots (state, pid, restarts, last exit).
INSERT INTO dbos.pgfleet_supervisors AS s (supervisor_id, name, host, pid, app, workers, state, slots, last_seen)
VALUES (%(supervisor_id)s, %(name)s, %(host)s, %(pid)s, %(app)s, %(workers)s, %(state)s, %(slots)s, now())
ON CONFLICT (supervisor_id) DO UPDATE
SET pid = EXCLUDED.pid, app = EXCLUDED.app, workers = EXCLUDED.workers, state = EXCLUDED.state,
    slots = EXCLUDED.slots, last_seen = now(),
    started_at = CASE WHEN s.pid <> EXCLUDED.pid THEN now() ELSE s.started_at END
