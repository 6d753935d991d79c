-- A chaos run's log of writes made on workflows' behalf (install_chaos_history), in commit order.
SELECT seq, kind, workflow_uuid, function_id, function_name, key, writer, row_status, row_executor_id, row_owner_epoch,
       extract(epoch FROM at)::float8 AS at, child_workflow_id
FROM pgfleet_chaos.write_log
ORDER BY seq
