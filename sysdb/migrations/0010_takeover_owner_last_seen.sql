-- Each takeover records its lost owner's last heartbeat (issue #13), so "how long did it take"
-- (from the owner's silence to its work moving) stays known after the slot restarts and its
-- member row shows the new incarnation.
ALTER TABLE dbos.pgfleet_takeovers ADD COLUMN owner_last_seen TIMESTAMPTZ;
