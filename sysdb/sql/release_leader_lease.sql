-- A leader stepping down ends its lease at once, so the next one need not wait for it.
UPDATE dbos.pgfleet_leader
SET expires_at = coalesce(%(now)s::timestamptz, now())
WHERE term = %(term)s AND executor_id = %(executor_id)s
