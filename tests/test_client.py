"""DBOSClient: enqueue and follow workflows from a process that runs none."""

from __future__ import annotations

import asyncio
import re

import pytest

from runtime import DBOS, DBOSClient, DBOSException, DBOSQueueDeduplicatedError, Queue, SetWorkflowID


def test_client_enqueues_and_an_executor_runs_it(dbos, sys_url):
    Queue("client-q")

    @DBOS.step()
    def double(x):
        return 2 * x

    @DBOS.workflow(name="client_job")
    def job(x, *, plus=0):
        return double(x) + plus

    client = DBOSClient(system_database_url=sys_url)
    try:
        handle = client.enqueue({"workflow_name": "client_job", "queue_name": "client-q", "workflow_id": "from-client"}, 20, plus=2)
        assert handle.get_result(timeout_seconds=10) == 42
        assert client.retrieve_workflow("from-client").get_status().status == "SUCCESS"
        assert [s["output"] for s in client.list_workflow_steps("from-client")] == [40]
        assert [w.workflow_id for w in client.list_workflows(name="client_job")] == ["from-client"]

        client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "client-q", "deduplication_id": "d1"})
        with pytest.raises(DBOSQueueDeduplicatedError):
            client.enqueue({"workflow_name": "nobody_runs_this", "queue_name": "client-q", "deduplication_id": "d1"})
        queued = client.list_queued_workflows()
        assert [(w.name, w.status) for w in queued] == [("nobody_runs_this", "ENQUEUED")]
    finally:
        client.destroy()


def test_client_cancel_and_resume_through_the_internal_queue(dbos, sys_url, db):
    import threading

    reached, release, ran = threading.Event(), threading.Event(), []

    @DBOS.step()
    def first():
        ran.append("first")
        reached.set()
        release.wait(10)

    @DBOS.step()
    def second():
        ran.append("second")
        return "finished"

    @DBOS.workflow()
    def long_job():
        first()
        return second()

    with SetWorkflowID("resumable"):
        DBOS.start_workflow(long_job)
    assert reached.wait(10)
    client = DBOSClient(system_database_url=sys_url)
    try:
        client.cancel_workflow("resumable")
        release.set()
        handle = client.retrieve_workflow("resumable")
        with pytest.raises(Exception, match="cancelled"):
            handle.get_result(timeout_seconds=10)
        ran.clear()
        assert client.resume_workflow("resumable").get_result(timeout_seconds=10) == "finished"
        # The cancel landed before first() could checkpoint, so the resumed run does it again.
        assert ran == ["first", "second"]
        assert db.execute("SELECT count(*) FROM dbos.operation_outputs WHERE workflow_uuid='resumable'").fetchone()[0] == 2
    finally:
        client.destroy()


def test_fork_reuses_earlier_steps_and_client_messages(dbos, sys_url, db):
    ran = []

    @DBOS.step()
    def numbered(i):
        ran.append(i)
        return i * 10

    @DBOS.workflow(name="forkable")
    def forkable():
        DBOS.set_event("stage", "started")
        extra = DBOS.recv("go", timeout_seconds=10)
        return [numbered(i) for i in range(3)] + [extra]

    with SetWorkflowID("original"):
        handle = DBOS.start_workflow(forkable)
    client = DBOSClient(system_database_url=sys_url)
    try:
        assert client.get_event("original", "stage", timeout_seconds=5) == "started"
        client.send("original", "hello", "go")
        assert handle.get_result() == [0, 10, 20, "hello"]
        assert ran == [0, 1, 2]
        ran.clear()
        # Steps 1-3 are set_event, recv and its timeout; 4-6 the numbered steps. Fork at 6:
        # everything before it is reused, only the last numbered step runs again.
        forked = client.fork_workflow("original", 6)
        assert forked.get_result(timeout_seconds=10) == [0, 10, 20, "hello"]
        assert ran == [2]
        status = client.retrieve_workflow(forked.workflow_id).get_status()
        assert status.forked_from == "original"
        assert db.execute("SELECT was_forked_from FROM dbos.workflow_status WHERE workflow_uuid='original'").fetchone()[0] is True
    finally:
        client.destroy()


def test_dbos_sql_functions_enqueue_and_send_from_plain_sql(dbos, db):
    """DBOS's SQL entry points (for clients in other languages) work against pgfleet: JSON
    arguments and messages arrive as Python values."""
    Queue("sql-q", polling_interval_sec=0.1)

    @DBOS.workflow(name="sql_job")
    def sql_job(count, label, *, scale=1):
        return {"total": count * scale, "label": label, "note": DBOS.recv("notes", timeout_seconds=10)}

    workflow_id = db.execute(
        "SELECT dbos.enqueue_workflow('sql_job', 'sql-q', ARRAY['21'::json, '\"apples\"'::json], '{\"scale\": 2}'::json, "
        "workflow_id => 'from-sql')"
    ).fetchone()[0]
    assert workflow_id == "from-sql"
    db.execute("SELECT dbos.send_message('from-sql', '{\"text\": \"hi\"}'::json, 'notes')")
    expected = {"total": 42, "label": "apples", "note": {"text": "hi"}}
    assert DBOS.retrieve_workflow("from-sql").get_result(timeout_seconds=10) == expected
    # A workflow enqueued as portable JSON gets its result written as JSON too, readable by the
    # client in another language that enqueued it (and by a waiter reading the row).
    import json

    output, serialization = db.execute("SELECT output, serialization FROM dbos.workflow_status WHERE workflow_uuid='from-sql'").fetchone()
    assert serialization == "portable_json" and json.loads(output) == expected
    with pytest.raises(Exception, match="DBOS non-existent workflow"):
        db.execute("SELECT dbos.send_message('nobody', '1'::json)")


def test_client_takes_every_key_of_dbos_enqueue_options(sys_url, db):
    """DBOS's EnqueueOptions keys (``class_name``, ``instance_name``, ``attributes``,
    ``application_name``, ``max_recovery_attempts``, ``otel_context``: see tests/test_tracing.py)
    are taken as DBOS takes them; an ``otel_context`` that is no OpenTelemetry Context and keys
    DBOS does not have are refused."""
    client = DBOSClient(system_database_url=sys_url)
    try:
        client.enqueue({
            "workflow_name": "nobody_runs_this", "queue_name": "keys-q", "workflow_id": "all-keys",
            "class_name": "Shop", "instance_name": "north", "attributes": {"team": "a"},
            "application_name": "other-app", "max_recovery_attempts": 3,
        })
        with pytest.raises(Exception, match=r"EnqueueOptions\['otel_context'\] must be an OpenTelemetry Context"):
            client.enqueue({"workflow_name": "w", "queue_name": "keys-q", "otel_context": object()})  # type: ignore[typeddict-unknown-key]
        with pytest.raises(Exception, match="unknown EnqueueOptions key"):
            client.enqueue({"workflow_name": "w", "queue_name": "keys-q", "queue": "typo"})  # type: ignore[typeddict-unknown-key]
    finally:
        client.destroy()
    row = db.execute(
        "SELECT class_name, config_name, attributes, application_name FROM dbos.workflow_status WHERE workflow_uuid = 'all-keys'"
    ).fetchone()
    assert row == ("Shop", "north", {"team": "a"}, "other-app")
    assert db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone()[0] == 1  # the refused ones wrote nothing


def test_a_queue_a_client_returned_refuses_to_enqueue_as_dbos_does(dbos, sys_url, db):
    """A client's Queue object enqueues nothing itself (DBOS's error and words): its enqueues go
    through ``DBOSClient.enqueue``, which carries the client's application."""

    @DBOS.workflow(name="client_bound_job")
    def job() -> int:
        return 1

    client = DBOSClient(system_database_url=sys_url)
    try:
        queue = client.register_queue("client_bound")
        expected = "Cannot enqueue on queue client_bound from a client-bound Queue object. Use DBOSClient.enqueue instead."
        with pytest.raises(DBOSException, match=expected):
            queue.enqueue(job)
        with pytest.raises(DBOSException, match=expected):
            asyncio.run(queue.enqueue_async(job))
        assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'client_bound'").fetchone() == (0,)
    finally:
        client.destroy()


@pytest.mark.parametrize("workflow_id", ["", "  ", "\t\n"])
def test_a_blank_workflow_id_is_refused_by_every_enqueue_as_in_dbos(dbos, sys_url, db, workflow_id):
    """DBOS refuses an empty or whitespace-only id; the client once enqueued ``""`` under a
    random id instead (found by tests/differential/programs/client_options.py)."""
    expected = "^" + re.escape(f"DBOS Error: Invalid workflow ID {workflow_id!r}: workflow IDs must be non-empty and cannot be only whitespace.") + "$"
    client = DBOSClient(system_database_url=sys_url)
    try:
        with pytest.raises(DBOSException, match=expected):
            client.enqueue({"workflow_name": "w", "queue_name": "blank-q", "workflow_id": workflow_id})
        with pytest.raises(DBOSException, match=expected):
            client.enqueue_in_transaction(db, {"workflow_name": "w", "queue_name": "blank-q", "workflow_id": workflow_id})
    finally:
        client.destroy()
    with pytest.raises(DBOSException, match=expected):
        DBOS.enqueue_workflow_with_options({"workflow_name": "w", "queue_name": "blank-q", "workflow_id": workflow_id})
    with pytest.raises(DBOSException, match=expected):
        SetWorkflowID(workflow_id)
    assert db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone() == (0,)


@pytest.mark.parametrize("missing", ["workflow_name", "queue_name"])
def test_enqueue_options_without_a_name_raise_an_error_naming_it_that_is_also_dbos_keyerror(dbos, sys_url, db, missing):
    options = {"workflow_name": "w", "queue_name": "named-q"}
    del options[missing]
    client = DBOSClient(system_database_url=sys_url)
    try:
        for enqueue in (client.enqueue, DBOS.enqueue_workflow_with_options):
            with pytest.raises(KeyError) as caught:
                enqueue(options)  # type: ignore[arg-type]
            assert isinstance(caught.value, DBOSException) and str(caught.value) == f"DBOS Error: EnqueueOptions needs {missing!r}"
    finally:
        client.destroy()
    assert db.execute("SELECT count(*) FROM dbos.workflow_status").fetchone() == (0,)
