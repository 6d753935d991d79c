-- Serialise claimers of one queue (and partition) for the rest of this transaction, so that
-- the count-and-claim that follows sees every earlier claim: limits hold with any number of
-- claimers, and nobody errors or retries (no NOWAIT, no serialization failures).
SELECT pg_advisory_xact_lock(hashtext('pgfleet.queue'), hashtext(%(lock_key)s))
