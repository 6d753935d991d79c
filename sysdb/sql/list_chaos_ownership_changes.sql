-- A chaos run's log of ownership changes (install_chaos_history), in commit order.
SELECT seq, workflow_uuid, status, executor_id, owner_epoch, queue_name, queue_partition_key, rate_limited,
       started_at_epoch_ms, writer, extract(epoch FROM at)::float8 AS at
FROM pgfleet_chaos.ownership_log
ORDER BY seq
