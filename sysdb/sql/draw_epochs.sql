-- Draw a block of fresh ownership epochs. A write that hands out ownership takes its epoch from
-- such a block before it runs, so the epoch is also that write's attempt token: a retry after a
-- lost reply recognises its own row by it. Epochs are only ever compared for equality, so
-- handing them out in blocks (one round trip per block) loses nothing.
SELECT nextval('dbos.pgfleet_epoch_seq') AS epoch
FROM generate_series(1, %(count)s)
