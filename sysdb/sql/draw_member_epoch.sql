-- Draw the epoch (incarnation) a registering executor will claim, before register_executor
-- runs, so that a retry after a lost reply recognises the row its first attempt wrote.
SELECT nextval('dbos.pgfleet_member_epoch_seq') AS epoch
