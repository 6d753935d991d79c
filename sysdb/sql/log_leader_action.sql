-- Record what the leader did, only while its lease (holder and term) is valid.
INSERT INTO dbos.pgfleet_leader_log (term, executor_id, action, detail)
SELECT %(term)s, %(executor_id)s, %(action)s, %(detail)s
WHERE EXISTS (
    SELECT 1 FROM dbos.pgfleet_leader
    WHERE term = %(term)s AND executor_id = %(executor_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
)
RETURNING id
