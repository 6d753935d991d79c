-- Debounce: push back a debounced DELAYED workflow holding this (queue, deduplication id) and
-- give it the new inputs, in one statement. The new delay is capped at the debounce deadline.
-- Matching the workflow name keeps a key collision between two workflows ("a"+"b-c" and
-- "a-b"+"c") from overwriting the other's inputs. The row lock orders a bounce against the
-- leader's promotion (DELAYED -> ENQUEUED, which clears the key): a bounce that waited for it
-- re-checks the row and bounces nothing. Without a bounce, the key's current holder (if any) is
-- returned, so the caller can start a fresh workflow or report the conflict.
WITH bounced AS (
    UPDATE dbos.workflow_status
    SET delay_until_epoch_ms = CASE
            WHEN debounce_deadline_epoch_ms IS NOT NULL
                 AND debounce_deadline_epoch_ms < %(delay_until_ms)s THEN debounce_deadline_epoch_ms
            ELSE %(delay_until_ms)s
        END,
        inputs = %(inputs)s,
        serialization = %(serialization)s,
        updated_at = (extract(epoch FROM statement_timestamp()) * 1000)::bigint,
        application_name = coalesce(application_name, %(application_name)s)
    WHERE name = %(workflow_name)s
      AND queue_name = %(queue_name)s
      AND deduplication_id = %(deduplication_id)s
      AND status = 'DELAYED'
      AND is_debounced
      AND (%(application_name)s::text IS NULL OR application_name IS NULL OR application_name = %(application_name)s)
    RETURNING workflow_uuid
)
SELECT (SELECT workflow_uuid FROM bounced) AS bounced_workflow_id,
       holder.workflow_uuid AS holder_workflow_id,
       coalesce(holder.is_debounced, FALSE) AS holder_is_debounced,
       holder.name AS holder_workflow_name,
       holder.application_name AS holder_application_name
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT workflow_uuid, is_debounced, name, application_name
    FROM dbos.workflow_status
    WHERE queue_name = %(queue_name)s AND deduplication_id = %(deduplication_id)s
    LIMIT 1
) AS holder ON NOT EXISTS (SELECT 1 FROM bounced)
