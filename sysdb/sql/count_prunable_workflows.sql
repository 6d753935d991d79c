-- What a prune would delete now (its dry run): finished workflows created before the cutoff,
-- by status. One pass over workflow_status_created_at_index below the cutoff.
SELECT status, count(*) AS workflows
FROM dbos.workflow_status
WHERE created_at < (extract(epoch FROM statement_timestamp()) * 1000)::bigint - %(older_than_ms)s
  AND status = ANY(%(statuses)s)
  AND status NOT IN ('PENDING', 'ENQUEUED', 'DELAYED')
GROUP BY status
ORDER BY status
