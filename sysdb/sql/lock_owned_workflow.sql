-- Hold a running workflow's status row FOR SHARE while this owner and epoch still hold it: a
-- takeover or a cancel (an UPDATE of the row) waits until the holding transaction ends. Used to
-- keep ownership fixed across a commit on another database (@DBOS.transaction on a separate
-- application database). No row: ownership is lost.
SELECT workflow_uuid
FROM dbos.workflow_status
WHERE workflow_uuid = %(workflow_id)s
  AND executor_id = %(executor_id)s
  AND owner_epoch = %(owner_epoch)s
  AND status = 'PENDING'
FOR SHARE
