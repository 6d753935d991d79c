-- Claim up to the free budget of a queue for this executor, in priority then enqueue order.
-- Runs right after lock_queue_for_claim in the same transaction, so its snapshot includes every
-- claim committed before ours. The budget is the smallest of: what was asked for, the global
-- concurrency left, this executor's worker concurrency left, and the rate limiter's starts left
-- in the rolling window. Claimed rows get this executor as owner with a fresh epoch.
-- The claim is fenced on the claimer's membership: its member row must still be active with the
-- epoch it registered, locked FOR SHARE so that a concurrent "declare dead" either commits first
-- (and this claim re-reads the row, finds it dead and claims nothing) or waits for this claim,
-- whose rows the takeover that follows then finds. A dead member's claim claims nothing.
-- Time is the database's, read once (a volatile CTE is evaluated once), after the queue lock:
-- the rate-limit window, due delays, start times and dequeue deadlines agree across hosts
-- whatever their clocks say.
-- A database-backed queue's limits are read here from its dbos.queues row (under the queue lock,
-- so every claimer of the fleet applies the limits current at its claim: a setter's change
-- holds from the next claim on); a deleted row claims nothing. A queue declared in code
-- passes its limits as parameters.
WITH clock AS (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms
),
limits AS (
    SELECT %(concurrency)s::int AS concurrency, %(worker_concurrency)s::int AS worker_concurrency,
           %(limiter_limit)s::int AS limiter_limit, %(limiter_period_ms)s::bigint AS limiter_period_ms
    WHERE NOT %(database_backed)s
    UNION ALL
    SELECT q.concurrency, q.worker_concurrency, q.rate_limit_max,
           CASE WHEN q.rate_limit_max IS NULL THEN 0 ELSE (q.rate_limit_period_sec * 1000)::bigint END
    FROM dbos.queues q
    WHERE %(database_backed)s AND q.name = %(queue_name)s
),
member AS (
    SELECT 1
    FROM dbos.pgfleet_executors
    WHERE executor_id = %(executor_id)s
      AND epoch = %(member_epoch)s
      AND status = 'active'
    FOR SHARE
),
counts AS (
    SELECT count(*) FILTER (WHERE status = 'PENDING') AS running,
           count(*) FILTER (WHERE status = 'PENDING' AND executor_id = %(executor_id)s) AS running_here,
           count(*) FILTER (WHERE rate_limited AND started_at_epoch_ms > (SELECT now_ms FROM clock) - (SELECT limiter_period_ms FROM limits))
               AS started_in_window
    FROM dbos.workflow_status
    WHERE queue_name = %(queue_name)s
      AND queue_partition_key IS NOT DISTINCT FROM %(partition_key)s
      AND (status = 'PENDING' OR (rate_limited AND started_at_epoch_ms > (SELECT now_ms FROM clock) - (SELECT limiter_period_ms FROM limits)))
),
budget AS (
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM member) THEN 0 ELSE GREATEST(0, LEAST(
        %(max_claim)s,
        coalesce(limits.concurrency - running, %(max_claim)s),
        coalesce(limits.worker_concurrency - running_here, %(max_claim)s),
        coalesce(limits.limiter_limit - started_in_window, %(max_claim)s)
    )) END AS n
    FROM counts CROSS JOIN limits
),
-- The picks: the first `budget` rows in priority then enqueue order that nobody else has
-- locked. ENQUEUED and due DELAYED rows are picked apart and merged: each side is one ordered
-- walk of an index (idx_workflow_status_in_flight gives (priority, created_at) for one queue's
-- ENQUEUED rows; enqueue_seq breaks ties by an incremental sort) that stops after max_claim
-- unlocked rows, so a claim reads about max_claim rows whatever the backlog. The single OR-ed
-- scan this replaces could not be walked in order: it fetched and sorted the queue's whole
-- backlog at every claim (20,000 waiting: ~12 ms a claim, against ~1.5 ms now). Each side's
-- LIMIT is the max_claim parameter, not the budget, because the planner walks an index in
-- order only under a LIMIT it knows to be small (a LIMIT it cannot compute at plan time counts
-- as a tenth of the rows). The budget is at most max_claim, so each side's first max_claim
-- unlocked rows hold the merged first `budget`: the rows claimed are the same as one scan's.
-- Rows a side locked but the merge did not keep are released at this transaction's commit,
-- milliseconds later, and only other claimers of the queue could want them, which wait for the
-- queue lock anyway. No budget (a full queue): neither side runs.
picked_enqueued AS (
    SELECT workflow_uuid, priority, created_at, enqueue_seq
    FROM dbos.workflow_status
    WHERE queue_name = %(queue_name)s
      -- IS NOT DISTINCT FROM, spelled so that the planner can estimate it (IS NULL for an
      -- unpartitioned queue): misjudged as matching ~1 row, it sorted the whole backlog
      AND (queue_partition_key = %(partition_key)s OR (queue_partition_key IS NULL AND %(partition_key)s::text IS NULL))
      AND status = 'ENQUEUED'
      AND name = ANY(%(workflow_names)s)
      -- a method runs only where what it is bound to exists (its configured instance, or for a
      -- classmethod its class): never claim it into a process that would have to strand it
      AND CASE WHEN config_name IS NOT NULL OR name = ANY(%(instance_methods)s::text[])
               THEN (class_name, coalesce(config_name, '')) IN (  -- '': an instance without a name
                   SELECT * FROM unnest(%(instance_classes)s::text[], %(instance_configs)s::text[]))
               WHEN name = ANY(%(class_methods)s::text[]) THEN class_name = ANY(%(classes)s::text[])
               ELSE TRUE END
      -- as DBOS: a workflow pinned to an application version runs only on that version
      AND (application_version IS NULL OR application_version = %(application_version)s)
      AND coalesce((SELECT n FROM budget), 0) > 0  -- no budget row: a deleted database-backed queue
    ORDER BY priority, created_at, enqueue_seq NULLS LAST
    LIMIT %(max_claim)s
    FOR UPDATE SKIP LOCKED
),
picked_delayed AS (
    SELECT workflow_uuid, priority, created_at, enqueue_seq
    FROM dbos.workflow_status
    WHERE queue_name = %(queue_name)s
      AND (queue_partition_key = %(partition_key)s OR (queue_partition_key IS NULL AND %(partition_key)s::text IS NULL))
      AND status = 'DELAYED' AND delay_until_epoch_ms <= (SELECT now_ms FROM clock)
      AND name = ANY(%(workflow_names)s)
      AND CASE WHEN config_name IS NOT NULL OR name = ANY(%(instance_methods)s::text[])
               THEN (class_name, coalesce(config_name, '')) IN (  -- '': an instance without a name
                   SELECT * FROM unnest(%(instance_classes)s::text[], %(instance_configs)s::text[]))
               WHEN name = ANY(%(class_methods)s::text[]) THEN class_name = ANY(%(classes)s::text[])
               ELSE TRUE END
      AND (application_version IS NULL OR application_version = %(application_version)s)
      AND coalesce((SELECT n FROM budget), 0) > 0
    ORDER BY priority, created_at, enqueue_seq NULLS LAST
    LIMIT %(max_claim)s
    FOR UPDATE SKIP LOCKED
),
picked AS (
    SELECT workflow_uuid
    FROM (SELECT * FROM picked_enqueued UNION ALL SELECT * FROM picked_delayed) AS both_sides
    ORDER BY priority, created_at, enqueue_seq NULLS LAST
    LIMIT coalesce((SELECT n FROM budget), 0)  -- no budget row: a deleted database-backed queue
)
UPDATE dbos.workflow_status AS w
SET status = 'PENDING',
    executor_id = %(executor_id)s,
    owner_epoch = nextval('dbos.pgfleet_epoch_seq'),
    started_at_epoch_ms = (SELECT now_ms FROM clock),
    updated_at = (SELECT now_ms FROM clock),
    rate_limited = coalesce((SELECT limiter_limit IS NOT NULL FROM limits), FALSE),
    recovery_attempts = w.recovery_attempts + 1,
    workflow_deadline_epoch_ms = CASE
        WHEN w.workflow_timeout_ms IS NOT NULL AND w.workflow_deadline_epoch_ms IS NULL
        THEN (SELECT now_ms FROM clock) + w.workflow_timeout_ms
        ELSE w.workflow_deadline_epoch_ms
    END
FROM picked
WHERE w.workflow_uuid = picked.workflow_uuid
RETURNING w.workflow_uuid, w.owner_epoch, w.recovery_attempts, w.name, w.class_name, w.config_name,
          w.inputs, w.serialization, w.authenticated_user, w.authenticated_roles, w.assumed_role,
          w.workflow_timeout_ms, w.workflow_deadline_epoch_ms, w.queue_name,
          -- a re-claimed or resumed workflow has recorded steps to replay; a fresh one has none
          EXISTS (SELECT 1 FROM dbos.operation_outputs o WHERE o.workflow_uuid = w.workflow_uuid) AS has_steps,
          -- the membership the claim was made under: its reply may arrive after that ended
          %(member_epoch)s::bigint AS acquired_member_epoch
