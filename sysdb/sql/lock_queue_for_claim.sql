-- Serialise claimers of one queue (and partition) for the rest of this transaction, so that
-- the count-and-claim that follows sees every earlier claim: limits hold with any number of
-- claimers, and nobody errors or retries (no NOWAIT, no serialization failures).
-- The wait is bounded by lock_timeout (milliseconds, this transaction only; the CTE sets it
-- before the lock is asked for): a claimer whose lock holder is paused or cut off gets
-- LockNotAvailable and moves on to its other queues instead of stopping with it (the holder
-- itself is ended by its idle-in-transaction timeout).
WITH bounded AS MATERIALIZED (
    SELECT set_config('lock_timeout', %(lock_timeout)s, true)
)
SELECT pg_advisory_xact_lock(hashtext('pgfleet.queue'), hashtext(%(lock_key)s))
FROM bounded
