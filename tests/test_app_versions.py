"""Application versions, queue ownership, enqueueing by name and the "return-existing"
duplication policy, on pgfleet alone (the differential program queues_and_versions compares
the same calls with DBOS)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator

import pytest

from runtime import DBOS, DBOSClient, Queue, SetEnqueueOptions, SetWorkflowID
from runtime.errors import DBOSException, DBOSQueueDeduplicatedError

DEADLINE_SEC = 30.0


def launch(sys_url: str, version: str, name: str = "versions-app") -> None:
    DBOS.destroy()
    DBOS(config={"name": name, "system_database_url": sys_url, "executor_id": f"{name}-x", "application_version": version})
    DBOS.launch()


@pytest.fixture
def app(sys_url: str) -> Iterator[str]:
    DBOS.destroy(destroy_registry=True)
    launch(sys_url, "v1")
    yield sys_url
    DBOS.destroy(destroy_registry=True)


def test_each_launch_records_its_version_and_the_first_launch_of_a_version_is_the_latest(app, db):
    launch(app, "v2")
    launch(app, "v1")  # a restart of an old version does not make it the latest
    assert [v["version_name"] for v in DBOS.list_application_versions()] == ["v2", "v1"]
    assert DBOS.get_latest_application_version()["version_name"] == "v2"
    DBOS.set_latest_application_version("v1")
    assert DBOS.get_latest_application_version()["version_name"] == "v1"
    rows = db.execute("SELECT version_name, application_name FROM dbos.application_versions ORDER BY version_name").fetchall()
    assert rows == [("v1", "versions-app"), ("v2", "versions-app")]


def test_a_version_or_queue_of_another_application_is_refused_with_dbos_text(app, db):
    DBOS.register_queue("owned-queue")
    DBOS.destroy()
    launch(app, "v1", name="other-app")  # launches (DBOS refuses: see the README), the row stays versions-app's
    assert DBOS.list_application_versions() == []
    assert db.execute("SELECT application_name FROM dbos.application_versions").fetchall() == [("versions-app",)]
    with pytest.raises(DBOSException, match="^DBOS Error: Queue 'owned-queue' is already registered by application 'versions-app'"):
        DBOS.register_queue("owned-queue", concurrency=3)
    assert DBOS.retrieve_queue("owned-queue").concurrency is None  # untouched
    with pytest.raises(DBOSException, match="already registered by application 'versions-app'"):
        DBOS.set_latest_application_version("v1")
    assert [q.name for q in DBOS.list_queues()] == []  # another application's queue is not listed
    assert [q.name for q in DBOS.list_queues(application_name="versions-app")] == ["owned-queue"]


def test_the_default_on_conflict_updates_only_from_the_latest_version(app):
    DBOS.register_queue("rolling", concurrency=1)
    launch(app, "v2")  # the latest now
    assert DBOS.register_queue("rolling", concurrency=2).concurrency == 2
    launch(app, "v1")  # an old version in a rolling deploy
    assert DBOS.register_queue("rolling", concurrency=3).concurrency == 2
    assert DBOS.register_queue("rolling", concurrency=3, on_conflict="always_update").concurrency == 3


def test_return_existing_inside_a_workflow_is_checkpointed_and_replays_the_holder(app, db):
    queue = Queue("dedup-queue")
    release = threading.Event()  # the holder runs until released: it keeps its deduplication id

    @DBOS.workflow(name="dedup_target")
    def target(x: int) -> int:
        assert release.wait(DEADLINE_SEC)
        return x

    @DBOS.workflow(name="dedup_parent")
    def parent() -> str:
        with SetEnqueueOptions(deduplication_id="held", duplication_policy="return-existing"):
            return queue.enqueue(target, 2).workflow_id

    with SetEnqueueOptions(deduplication_id="held"):
        first = queue.enqueue(target, 1)
    with SetWorkflowID("dedup-parent-1"):
        assert parent() == first.workflow_id
    with SetEnqueueOptions(deduplication_id="held"):
        with pytest.raises(DBOSQueueDeduplicatedError):
            queue.enqueue(target, 3)
    release.set()
    assert first.get_result(timeout_seconds=DEADLINE_SEC) == 1
    # The parent's step names the holder; its replay returns it without enqueueing.
    steps = db.execute("SELECT function_name, child_workflow_id FROM dbos.operation_outputs WHERE workflow_uuid = 'dedup-parent-1'").fetchall()
    assert steps == [("dedup_target", first.workflow_id)]
    with SetWorkflowID("dedup-parent-1"):
        assert parent() == first.workflow_id
    (count,) = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'dedup-queue'").fetchone()
    assert count == 1


def test_enqueue_with_options_runs_a_workflow_by_name_and_reports_bad_options(app):
    Queue("by-name")

    @DBOS.workflow(name="by_name_target")
    def target(x: int) -> int:
        return x + 1

    with SetWorkflowID("by-name-1"):
        handle = DBOS.enqueue_workflow_with_options({"workflow_name": "by_name_target", "queue_name": "by-name"}, 1)
    assert handle.workflow_id == "by-name-1" and handle.get_result(timeout_seconds=DEADLINE_SEC) == 2
    assert handle.get_status().app_version is None  # unpinned unless asked, as in DBOS
    with pytest.raises(DBOSException, match="unknown EnqueueOptions key"):
        DBOS.enqueue_workflow_with_options({"workflow_name": "x", "queue_name": "by-name", "queue": "y"})
    # A trace context is carried into the row (tests/test_tracing.py); a value that is none is refused.
    with pytest.raises(DBOSException, match=r"EnqueueOptions\['otel_context'\] must be an OpenTelemetry Context"):
        DBOS.enqueue_workflow_with_options({"workflow_name": "x", "queue_name": "by-name", "otel_context": object()})


def test_rename_moves_an_applications_rows(app, db, sys_url):
    DBOS.register_queue("renamed-queue")

    @DBOS.workflow(name="rename_job")
    def job() -> int:
        return 1

    job()
    DBOS.destroy()
    client = DBOSClient(system_database_url=sys_url)
    try:
        counts = client.rename_application("versions-app", "new-app", batch_size=1)
        assert counts["queues"] == 1 and counts["versions"] == 1 and counts["workflows"] >= 1
        owners = {o for (o,) in db.execute("SELECT DISTINCT application_name FROM dbos.workflow_status")}
        assert owners == {"new-app"}
        assert [v["version_name"] for v in client.list_application_versions()] == ["v1"]
        assert client.retrieve_queue("renamed-queue").application_name == "new-app"
    finally:
        client.destroy()


DBOS_PYTHON = os.environ.get("PGFLEET_DBOS_PYTHON")

WITH_DBOS_CLIENT = """
import json, sys
from dbos import DBOSClient
client = DBOSClient(system_database_url=sys.argv[1], application_name="versions-app")
queue = client.retrieve_queue("shared-queue")
seen = {
    "listed": sorted(q.name for q in client.list_queues()),
    "settings": [queue.concurrency, queue.worker_concurrency, queue.limiter, queue.priority_enabled,
                 queue.polling_interval_sec, queue.application_name],
    "versions": [[v["version_name"], v["application_name"]] for v in client.list_application_versions()],
    "latest": client.get_latest_application_version()["version_name"],
}
queue.set_concurrency(7)
client.register_queue("dbos-made", worker_concurrency=2, limiter={"limit": 3, "period": 0.5})
print(json.dumps(seen))
client.destroy()
"""


@pytest.mark.skipif(not DBOS_PYTHON, reason="set PGFLEET_DBOS_PYTHON to a Python with dbos installed")
def test_dbos_reads_and_writes_pgfleet_queues_and_versions(app, sys_url):
    from psycopg.conninfo import conninfo_to_dict

    DBOS.register_queue("shared-queue", concurrency=3, worker_concurrency=1, limiter={"limit": 4, "period": 2.0},
                        priority_enabled=True, polling_interval_sec=0.25)
    params = conninfo_to_dict(sys_url)
    url = f"postgresql://{params.get('user', 'postgres')}@{params.get('host', 'localhost')}:{params.get('port', 5432)}/{params['dbname']}"
    assert DBOS_PYTHON is not None
    done = subprocess.run([DBOS_PYTHON, "-c", WITH_DBOS_CLIENT, url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "listed": ["shared-queue"],
        "settings": [3, 1, {"limit": 4, "period": 2.0}, True, 0.25, "versions-app"],
        "versions": [["v1", "versions-app"]],
        "latest": "v1",
    }
    # What DBOS wrote, pgfleet reads (and serves: the claim reads these rows).
    assert DBOS.retrieve_queue("shared-queue").concurrency == 7
    made = DBOS.retrieve_queue("dbos-made")
    assert [made.worker_concurrency, made.limiter, made.application_name] == [2, {"limit": 3, "period": 0.5}, "versions-app"]


def test_a_clients_enqueue_honours_return_existing(app, sys_url):
    release = threading.Event()
    Queue("client-dedup")

    @DBOS.workflow(name="client_dedup_target")
    def target(x: int) -> int:
        assert release.wait(DEADLINE_SEC)
        return x

    client = DBOSClient(system_database_url=sys_url)
    try:
        options = {"workflow_name": "client_dedup_target", "queue_name": "client-dedup", "deduplication_id": "c1"}
        first = client.enqueue(options, 1)
        again = client.enqueue({**options, "duplication_policy": "return-existing"}, 2)
        assert again.workflow_id == first.workflow_id
        with pytest.raises(DBOSQueueDeduplicatedError):
            client.enqueue(options, 3)
        with pytest.raises(DBOSException, match="^DBOS Error: Invalid duplication_policy x. Must be either 'reject' or 'return-existing'.$"):
            client.enqueue({**options, "duplication_policy": "x"}, 4)
        release.set()
        assert again.get_result(timeout_seconds=DEADLINE_SEC) == 1
    finally:
        client.destroy()
