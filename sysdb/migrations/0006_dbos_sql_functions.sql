-- DBOS 2.x's SQL entry points, for clients in any language: enqueue a workflow and send a
-- message with plain SQL. Arguments and messages are JSON ('portable_json'), which pgfleet
-- reads like its own pickled values. pgfleet's version also wakes the fleet's claimers.

CREATE OR REPLACE FUNCTION dbos.enqueue_workflow(
    workflow_name text,
    queue_name text,
    positional_args json[] DEFAULT ARRAY[]::json[],
    named_args json DEFAULT '{}'::json,
    class_name text DEFAULT NULL,
    config_name text DEFAULT NULL,
    workflow_id text DEFAULT NULL,
    app_version text DEFAULT NULL,
    timeout_ms bigint DEFAULT NULL,
    deadline_epoch_ms bigint DEFAULT NULL,
    deduplication_id text DEFAULT NULL,
    priority integer DEFAULT NULL,
    queue_partition_key text DEFAULT NULL,
    authenticated_user text DEFAULT NULL,
    authenticated_roles text DEFAULT NULL,
    delay_until_epoch_ms bigint DEFAULT NULL,
    application_name text DEFAULT NULL
) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO pg_catalog, pg_temp
AS $$
DECLARE
    new_id text := coalesce(enqueue_workflow.workflow_id, gen_random_uuid()::text);
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
    IF enqueue_workflow.workflow_name IS NULL OR enqueue_workflow.workflow_name = '' THEN
        RAISE EXCEPTION 'Workflow name cannot be null or empty';
    END IF;
    IF enqueue_workflow.queue_name IS NULL OR enqueue_workflow.queue_name = '' THEN
        RAISE EXCEPTION 'Queue name cannot be null or empty';
    END IF;
    IF enqueue_workflow.workflow_id = '' THEN
        RAISE EXCEPTION 'Workflow ID cannot be an empty string if provided.';
    END IF;
    IF enqueue_workflow.named_args IS NOT NULL AND json_typeof(enqueue_workflow.named_args) <> 'object' THEN
        RAISE EXCEPTION 'Named args must be a JSON object';
    END IF;
    IF enqueue_workflow.delay_until_epoch_ms < 0 THEN
        RAISE EXCEPTION 'delay_until_epoch_ms must be >= 0';
    END IF;

    INSERT INTO dbos.workflow_status (
        workflow_uuid, status, name, class_name, config_name, queue_name, deduplication_id,
        priority, queue_partition_key, application_version, created_at, updated_at,
        recovery_attempts, workflow_timeout_ms, workflow_deadline_epoch_ms, inputs, serialization,
        authenticated_user, authenticated_roles, delay_until_epoch_ms, application_name,
        owner_xid, enqueue_seq
    ) VALUES (
        new_id,
        CASE WHEN enqueue_workflow.delay_until_epoch_ms IS NULL THEN 'ENQUEUED' ELSE 'DELAYED' END,
        enqueue_workflow.workflow_name, enqueue_workflow.class_name, enqueue_workflow.config_name,
        enqueue_workflow.queue_name, enqueue_workflow.deduplication_id,
        coalesce(enqueue_workflow.priority, 0), enqueue_workflow.queue_partition_key,
        enqueue_workflow.app_version, now_ms, now_ms, 0, enqueue_workflow.timeout_ms,
        enqueue_workflow.deadline_epoch_ms,
        json_build_object(
            'positionalArgs', coalesce(to_json(enqueue_workflow.positional_args), '[]'::json),
            'namedArgs', coalesce(enqueue_workflow.named_args, '{}'::json)
        )::text,
        'portable_json', enqueue_workflow.authenticated_user, enqueue_workflow.authenticated_roles,
        enqueue_workflow.delay_until_epoch_ms, enqueue_workflow.application_name,
        gen_random_uuid()::text, nextval('dbos.pgfleet_enqueue_seq')
    )
    ON CONFLICT (workflow_uuid) DO UPDATE SET updated_at = EXCLUDED.updated_at;

    PERFORM pg_notify('pgfleet_queues', enqueue_workflow.queue_name);
    RETURN new_id;
EXCEPTION
    WHEN unique_violation THEN
        RAISE EXCEPTION 'DBOS queue duplicated'
            USING DETAIL = format('queue %s already has a live workflow with deduplication ID %s',
                                  enqueue_workflow.queue_name, enqueue_workflow.deduplication_id),
                  ERRCODE = 'unique_violation';
END;
$$;

CREATE OR REPLACE FUNCTION dbos.send_message(
    destination_id text,
    message json,
    topic text DEFAULT NULL,
    message_id text DEFAULT NULL
) RETURNS void
    LANGUAGE plpgsql
    SET search_path TO pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO dbos.notifications (destination_uuid, topic, message, message_uuid, serialization)
    VALUES (send_message.destination_id, coalesce(send_message.topic, '__null__topic__'),
            send_message.message::text, coalesce(send_message.message_id, gen_random_uuid()::text),
            'portable_json')
    ON CONFLICT (message_uuid) DO NOTHING;
EXCEPTION
    WHEN foreign_key_violation THEN
        RAISE EXCEPTION 'DBOS non-existent workflow'
            USING DETAIL = format('Destination workflow %s does not exist', send_message.destination_id),
                  ERRCODE = 'foreign_key_violation';
END;
$$;
