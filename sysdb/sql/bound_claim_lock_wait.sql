-- Wait at most lock_timeout (milliseconds) for the queue's claim lock in this transaction: a
-- claimer whose lock holder is paused or cut off moves on to its other queues instead of
-- stopping with it (the holder itself is ended by its idle-in-transaction timeout).
SELECT set_config('lock_timeout', %(lock_timeout)s, true)
