-- Take over one batch of a dead (or leaving) member's PENDING workflows, as one compare-and-set.
-- The member row is locked FOR SHARE while it still says dead/leaving with the epoch that was
-- read, so a re-registration of that executor id waits, and a sweep after it finds nothing.
-- Queued workflows go back to their queue (claimed again under its limits); the others are
-- assigned round-robin to live members that have registered their function, each with a fresh
-- ownership epoch. A workflow no live member can run stays where it is until one can.
-- The UPDATE re-checks the owner it selected on, so two sweepers never move a workflow twice.
-- With a leader term, the sweep happens only while that lease is valid.
WITH member AS (
    SELECT executor_id, epoch, last_heartbeat
    FROM dbos.pgfleet_executors
    WHERE executor_id = %(dead_executor_id)s
      AND epoch = %(dead_epoch)s
      AND status IN ('dead', 'leaving')
      AND (%(term)s::bigint IS NULL OR EXISTS (
          SELECT 1 FROM dbos.pgfleet_leader
          WHERE term = %(term)s AND executor_id = %(by_executor_id)s AND expires_at > coalesce(%(now)s::timestamptz, now())
      ))
    FOR SHARE
),
live AS (
    SELECT executor_id, workflow_names
    FROM dbos.pgfleet_executors
    WHERE status = 'active'
      AND last_heartbeat > coalesce(%(now)s::timestamptz, now()) - make_interval(secs => %(member_timeout_sec)s)
      AND executor_id <> %(dead_executor_id)s
),
victims AS (
    SELECT w.workflow_uuid, w.name, w.queue_name, w.owner_epoch, w.created_at
    FROM dbos.workflow_status w
    JOIN member m ON w.executor_id = m.executor_id
    WHERE w.status = 'PENDING'
      -- Only movable work: queued workflows, and those some live member can run. Unmovable ones
      -- must not fill the batch, or a dead member's oldest workflows of a function nobody has
      -- would block every later sweep and its movable work would never move.
      AND (w.queue_name IS NOT NULL OR EXISTS (SELECT 1 FROM live l WHERE w.name = ANY(l.workflow_names)))
    ORDER BY w.created_at
    LIMIT %(batch_size)s
    FOR UPDATE OF w SKIP LOCKED
),
numbered AS (
    SELECT v.*, row_number() OVER (ORDER BY v.created_at) AS n
    FROM victims v
),
assignment AS (
    SELECT nb.workflow_uuid, nb.queue_name, nb.owner_epoch AS from_epoch,
           (SELECT l.executor_id FROM live l
             WHERE nb.name = ANY(l.workflow_names)
             ORDER BY l.executor_id
             OFFSET (nb.n %% GREATEST(1, (SELECT count(*) FROM live l2 WHERE nb.name = ANY(l2.workflow_names))))
             LIMIT 1) AS new_owner
    FROM numbered nb
),
moved AS (
    UPDATE dbos.workflow_status AS w
    SET status = CASE WHEN a.queue_name IS NULL THEN 'PENDING' ELSE 'ENQUEUED' END,
        executor_id = CASE WHEN a.queue_name IS NULL THEN a.new_owner END,
        owner_epoch = CASE WHEN a.queue_name IS NULL THEN nextval('dbos.pgfleet_epoch_seq') END,
        started_at_epoch_ms = CASE WHEN a.queue_name IS NULL THEN w.started_at_epoch_ms END,
        recovery_attempts = CASE WHEN a.queue_name IS NULL THEN w.recovery_attempts + 1 ELSE w.recovery_attempts END,
        updated_at = %(now_ms)s
    FROM assignment a
    WHERE w.workflow_uuid = a.workflow_uuid
      AND w.executor_id = %(dead_executor_id)s
      AND w.status = 'PENDING'
      AND (a.queue_name IS NOT NULL OR a.new_owner IS NOT NULL)
    RETURNING w.workflow_uuid, w.name, w.queue_name, w.executor_id AS to_executor_id,
              w.owner_epoch AS to_epoch, w.recovery_attempts, a.from_epoch
),
logged AS (
    INSERT INTO dbos.pgfleet_takeovers (
        workflow_uuid, from_executor_id, from_epoch, to_executor_id, to_epoch, requeued_to,
        by_executor_id, leader_term, owner_last_seen
    )
    SELECT workflow_uuid, %(dead_executor_id)s, from_epoch, to_executor_id, to_epoch, queue_name,
           %(by_executor_id)s, %(term)s, (SELECT last_heartbeat FROM member)
    FROM moved
)
SELECT workflow_uuid, name, queue_name, to_executor_id, to_epoch, recovery_attempts FROM moved
