"""Database-backed queues, application versions, enqueueing by queue or workflow name, and the
"return-existing" duplication policy (#10 item 5): what each call returns and raises, and the
rows of dbos.queues and dbos.application_versions that DBOS's own tools read."""

import psycopg
from dbos import DBOS, DBOSClient, Queue, SetEnqueueOptions, SetWorkflowAttributes, SetWorkflowID, WorkflowSerializationFormat
from observe import attempt, database_url, report, see

CONFIG = {"name": "diff-queues", "system_database_url": database_url(), "application_version": "v1"}
DBOS(config=CONFIG)
memory_queue = Queue("memory-queue", concurrency=2)


@DBOS.workflow()
def double(x):
    return x * 2


# Holds its deduplication id until told to finish (a queue may dequeue and finish a quick
# workflow before the next enqueue, which then finds no holder).
@DBOS.workflow()
def double_when_told(x):
    DBOS.recv("go", timeout_seconds=60)
    return x * 2


@DBOS.workflow()
def abandoned(x):
    return x


@DBOS.workflow()
def by_name_parent(x):
    handle = DBOS.enqueue_workflow_with_options({"workflow_name": "double", "queue_name": "memory-queue"}, x)
    return handle.get_result()


def rows(query):
    with psycopg.connect(database_url()) as conn:
        return [list(r) for r in conn.execute(query).fetchall()]


def queue_rows():
    return rows(
        "SELECT name, concurrency, worker_concurrency, rate_limit_max, rate_limit_period_sec, priority_enabled,"
        " partition_queue, polling_interval_sec, application_name FROM dbos.queues ORDER BY name"
    )


def versions(infos):
    return [[v["version_name"], v["application_name"]] for v in infos]


def settings(q):
    return [q.name, q.concurrency, q.worker_concurrency, q.limiter, q.priority_enabled, q.partition_queue,
            q.polling_interval_sec, q.database_backed_queue, q.application_name]


def application_versions():
    see("versions at launch", rows("SELECT version_name, application_name FROM dbos.application_versions"))
    see("listed versions", versions(DBOS.list_application_versions()))
    see("latest version", DBOS.get_latest_application_version()["version_name"])
    attempt("promote an unknown version", lambda: DBOS.set_latest_application_version("no-such-version"))
    see("versions after promoting an unknown one", versions(DBOS.list_application_versions()))


def queues_declared_in_code():
    see("memory queue settings", settings(memory_queue))
    attempt("set on a memory queue", lambda: memory_queue.set_concurrency(3))
    attempt("set limiter on a memory queue", lambda: memory_queue.set_limiter(None))
    attempt("retrieve a missing queue", lambda: DBOS.retrieve_queue("no-such-queue"))


def registering():
    q = DBOS.register_queue("db-queue", concurrency=3, limiter={"limit": 5, "period": 2.0})
    see("registered", settings(q))
    see("register again, never_update", DBOS.register_queue("db-queue", concurrency=7, on_conflict="never_update").concurrency)
    see("register again, default", DBOS.register_queue("db-queue", concurrency=8).concurrency)
    see("register again, always_update", DBOS.register_queue("db-queue", concurrency=3, on_conflict="always_update").concurrency)
    see("register a memory queue's name", DBOS.register_queue("memory-queue", concurrency=8).concurrency)
    attempt("register worker > concurrency", lambda: DBOS.register_queue("bad", concurrency=1, worker_concurrency=2))
    attempt("register polling 0", lambda: DBOS.register_queue("bad", polling_interval_sec=0))
    attempt("register half a limiter", lambda: DBOS.register_queue("bad", limiter={"limit": 1}))
    see("retrieved", settings(DBOS.retrieve_queue("db-queue")))
    return q


def setters(q):
    attempt("set concurrency", lambda: q.set_concurrency(2))
    attempt("set worker above concurrency", lambda: q.set_worker_concurrency(3))
    attempt("set worker", lambda: q.set_worker_concurrency(1))
    attempt("set concurrency below worker", lambda: q.set_concurrency(0))
    attempt("set half a limiter", lambda: q.set_limiter({"limit": 3}))
    attempt("set limiter", lambda: q.set_limiter({"limit": 10, "period": 1.5}))
    attempt("clear limiter", lambda: q.set_limiter(None))
    attempt("set polling 0", lambda: q.set_polling_interval_sec(0))
    attempt("set polling", lambda: q.set_polling_interval_sec(0.5))
    attempt("set priority", lambda: q.set_priority_enabled(True))
    attempt("set partition", lambda: q.set_partition_queue(False))
    see("after the setters", settings(q))
    other_view = DBOS.retrieve_queue("db-queue")
    q.set_concurrency(4)
    see("another object sees the change", other_view.concurrency)
    see("queue rows", queue_rows())
    see("listed queues", sorted(x.name for x in DBOS.list_queues()))
    see("listed queues of another application", [x.name for x in DBOS.list_queues(application_name="other-app")])


def enqueueing():
    see("enqueue_workflow", DBOS.enqueue_workflow("db-queue", double, 21).get_result())
    with SetEnqueueOptions(priority=5):
        see("enqueue_workflow with a priority", DBOS.enqueue_workflow("db-queue", double, 2).get_result())
    with SetWorkflowID("on-a-missing-queue"):
        see("enqueue_workflow on a missing queue", DBOS.enqueue_workflow("no-such-queue", abandoned, 1).workflow_id)
    with SetEnqueueOptions(deduplication_id="dedup"):
        holder = memory_queue.enqueue(double_when_told, 3)
    with SetEnqueueOptions(deduplication_id="dedup", duplication_policy="return-existing"):
        see("return-existing returns the holder", memory_queue.enqueue(double, 4).workflow_id == holder.workflow_id)
    DBOS.send(holder.workflow_id, "now", "go")
    see("the holder's result", holder.get_result())
    with SetEnqueueOptions(duplication_policy="nope"):
        attempt("an invalid duplication policy", lambda: memory_queue.enqueue(double, 4))
    with SetEnqueueOptions(duplication_policy="return-existing"):
        attempt("return-existing without a deduplication id", lambda: memory_queue.enqueue(double, 4))
    with SetEnqueueOptions(queue_partition_key="k", deduplication_id="d"):
        attempt("deduplication on a partition", lambda: memory_queue.enqueue(double, 4))


def enqueueing_by_name():
    options = {"workflow_name": "double", "queue_name": "db-queue"}
    see("with options", DBOS.enqueue_workflow_with_options(options, 5).get_result())
    handle = DBOS.enqueue_workflow_with_options({**options, "queue_name": "memory-queue"}, 6)
    status = handle.get_status()
    see("with options: the row", [status.name, status.queue_name, status.app_version, handle.get_result()])
    portable = DBOS.enqueue_workflow_with_options(
        {**options, "serialization_type": WorkflowSerializationFormat.PORTABLE, "workflow_id": "portable-1"}, 8)
    see("with options, portable", portable.get_result())
    see("with options, portable: the row", rows("SELECT serialization, inputs FROM dbos.workflow_status WHERE workflow_uuid = 'portable-1'"))
    attempt("with options, priority 0", lambda: DBOS.enqueue_workflow_with_options({**options, "priority": 0}, 5))
    try:  # a KeyError naming the key in both (pgfleet's also says what needs it: README)
        DBOS.enqueue_workflow_with_options({"workflow_name": "double"}, 5)
    except KeyError as exc:
        see("with options, no queue", ["KeyError", "queue_name" in str(exc)])
    attempt("with options, blank id", lambda: DBOS.enqueue_workflow_with_options({**options, "workflow_id": " "}, 5))
    with SetWorkflowAttributes({"team": "a", "tier": 1}):
        tagged = DBOS.enqueue_workflow_with_options({**options, "attributes": {"tier": 2}, "max_recovery_attempts": 3}, 9)
    see("with options, attributes over the block's", [tagged.get_result(), tagged.get_status().attributes])
    with SetWorkflowID("parent-by-name"):
        see("with options inside a workflow", by_name_parent(7))
    with SetWorkflowID("parent-by-name"):
        see("with options inside a workflow, again", by_name_parent(7))


def deleting(q):
    attempt("delete", lambda: DBOS.delete_queue("db-queue"))
    attempt("delete again", lambda: DBOS.delete_queue("db-queue"))
    attempt("getter after delete", lambda: q.concurrency)
    attempt("setter after delete", lambda: q.set_concurrency(3))


def client_side():
    client = DBOSClient(system_database_url=database_url())
    attempt("client register, update_if_latest", lambda: client.register_queue("client-queue", on_conflict="update_if_latest_version"))
    q = client.register_queue("client-queue", concurrency=4)
    see("client queue", settings(q))
    attempt("client set", lambda: q.set_concurrency(2))
    see("client get", q.concurrency)
    see("client list", sorted(x.name for x in client.list_queues()))
    see("client versions", versions(client.list_application_versions()))
    see("client latest", client.get_latest_application_version()["version_name"])
    attempt("client promote", lambda: client.set_latest_application_version("v1"))
    attempt("client delete", lambda: client.delete_queue("client-queue"))
    see("client retrieve after delete", client.retrieve_queue("client-queue"))
    attempt("rename nothing", lambda: client.rename_application(None, "newname"))
    attempt("rename from empty", lambda: client.rename_application("", "newname"))
    attempt("rename to a bad name", lambda: client.rename_application("diff-queues", "Bad Name"))
    attempt("rename to itself", lambda: client.rename_application("diff-queues", "diff-queues"))
    attempt("rename with batch 0", lambda: client.rename_application("diff-queues", "other", batch_size=0))
    client.destroy()


def second_version():
    DBOS(config={**CONFIG, "application_version": "v2"})
    DBOS.launch()
    see("versions after v2", versions(DBOS.list_application_versions()))
    see("latest after v2", DBOS.get_latest_application_version()["version_name"])
    DBOS.set_latest_application_version("v1")
    see("latest after promoting v1", DBOS.get_latest_application_version()["version_name"])
    see("default register from a version that is not the latest",
        DBOS.register_queue("versioned-queue", concurrency=1).concurrency)
    see("and again, not the latest: no update", DBOS.register_queue("versioned-queue", concurrency=9).concurrency)
    client = DBOSClient(system_database_url=database_url())
    counts = client.rename_application("diff-queues", "renamed-app")
    # (not the steps: pgfleet does not record an application on step rows yet)
    see("rename moved", [counts["queues"], counts["versions"], counts["schedules"], counts["workflows"]])
    see("versions after the rename", versions(client.list_application_versions()))
    see("this application's versions after the rename", DBOS.list_application_versions())
    client.destroy()
    DBOS.destroy()


if __name__ == "__main__":
    DBOS.launch()
    application_versions()
    queues_declared_in_code()
    q = registering()
    setters(q)
    enqueueing()
    enqueueing_by_name()
    deleting(q)
    client_side()
    DBOS.destroy()
    second_version()
    report()
