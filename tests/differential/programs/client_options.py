"""DBOSClient.enqueue (sync) with each of EnqueueOptions' keys: what the row records, what runs,
and what a bad option raises; class and instance workflows by name; enqueue_in_transaction on a
SQLAlchemy connection to the system database, committed and rolled back."""

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, DBOSConfiguredInstance, Queue, SetWorkflowID
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-client-options", "system_database_url": database_url(), "application_version": "v-co"})
Queue("opt-q")
Queue("prio-q", priority_enabled=True)
Queue("part-q", partition_queue=True)
# "held-q" is declared by nobody: what is enqueued there stays ENQUEUED.


@DBOS.step()
def doubled_step(x):
    return 2 * x


@DBOS.workflow()
def doubled(x, plus=0):
    return doubled_step(x) + plus


@DBOS.workflow()
def who():
    return [DBOS.authenticated_user, DBOS.authenticated_roles, DBOS.assumed_role]


@DBOS.dbos_class()
class Counter:
    @staticmethod
    @DBOS.workflow()
    def static_add(a, b):
        return a + b

    @classmethod
    @DBOS.workflow()
    def class_add(cls, a, b):
        return [cls.__name__, a + b]


@DBOS.dbos_class()
class Named(DBOSConfiguredInstance):
    def __init__(self, name, base):
        self.base = base
        super().__init__(name)

    @DBOS.workflow()
    def add(self, x):
        return [self.config_name, self.base + x]


Named("ten", 10)


def opts(name, wfid, queue="opt-q", **more):
    return {"workflow_name": name, "queue_name": queue, "workflow_id": wfid, **more}


def fields(status):
    return {
        "status": status.status,
        "queue": status.queue_name,
        "timeout_ms": status.workflow_timeout_ms,
        "has_deadline": status.workflow_deadline_epoch_ms is not None,
        "dedup": status.deduplication_id,
        "priority": status.priority,
        "partition": status.queue_partition_key,
        "user": status.authenticated_user,
        "roles": status.authenticated_roles,
        "class": status.class_name,
        "config": status.config_name,
        "input": status.input,
        "app_name": getattr(status, "app_name", None),
    }


def each_option(client):
    see("plain", client.enqueue(opts("doubled", "o-1"), 4).get_result())
    see("kwargs", client.enqueue(opts("doubled", "o-2"), 4, plus=1).get_result())
    see("plain row", fields(client.retrieve_workflow("o-2").get_status()))
    h = client.enqueue(opts("doubled", "o-3", app_version="v-co", workflow_timeout=30), 5)
    see("timeout row", [h.get_result(), fields(h.get_status()), h.get_status().app_version])
    h = client.enqueue(opts("doubled", "o-4", queue="prio-q", priority=7, deduplication_id="dd"), 6)
    see("priority row", [h.get_result(), fields(h.get_status())])
    h = client.enqueue(opts("doubled", "o-5", queue="part-q", queue_partition_key="p1"), 7)
    see("partition row", [h.get_result(), fields(h.get_status())])
    h = client.enqueue(opts("who", "o-6", authenticated_user="alice", authenticated_roles=["admin", "ops"]))
    see("auth row", [h.get_result(), fields(h.get_status())])
    h = client.enqueue(opts("doubled", "o-7", max_recovery_attempts=3, attributes={"team": "x"}), 8)
    see("attributes", [h.get_result(), [w.workflow_id for w in client.list_workflows(attributes={"team": "x"})]])
    h = client.enqueue(opts("doubled", "o-8", serialization_type="portable"), 9)
    see("portable", [h.get_result(), fields(h.get_status())])
    held = client.enqueue(opts("doubled", "o-9", queue="held-q", app_version="some-other-version"), 1)
    see("other version row", [fields(held.get_status()), held.get_status().app_version])
    see("no workflow id", isinstance(client.enqueue({"workflow_name": "doubled", "queue_name": "opt-q"}, 1).get_workflow_id(), str))


def duplicates(client):
    first = client.enqueue(opts("doubled", "d-1", queue="held-q", deduplication_id="same"), 1)
    attempt("dedup rejected", lambda: client.enqueue(opts("doubled", "d-2", queue="held-q", deduplication_id="same"), 2))
    again = client.enqueue(opts("doubled", "d-3", queue="held-q", deduplication_id="same", duplication_policy="return-existing"), 3)
    see("return-existing", [first.get_workflow_id(), again.get_workflow_id()])
    see("same id enqueued twice", client.enqueue(opts("doubled", "o-1"), 100).get_result())
    attempt("policy without dedup id", lambda: client.enqueue(opts("doubled", "d-4", duplication_policy="return-existing"), 1))
    attempt("unknown policy", lambda: client.enqueue(opts("doubled", "d-5", duplication_policy="merge", deduplication_id="z"), 1))


def bad_options(client):
    attempt("priority too high", lambda: client.enqueue(opts("doubled", "b-1", priority=2**31), 1))
    attempt("priority zero", lambda: client.enqueue(opts("doubled", "b-0", priority=0), 1))
    attempt("priority negative", lambda: client.enqueue(opts("doubled", "b-2", priority=-1), 1))
    attempt("empty workflow id", lambda: client.enqueue(opts("doubled", ""), 1))
    attempt("blank workflow id", lambda: client.enqueue(opts("doubled", "  "), 1))
    attempt("blank SetWorkflowID", lambda: SetWorkflowID(" \t"))
    for label, options in (("no queue name", {"workflow_name": "doubled", "workflow_id": "b-3"}),
                           ("no workflow name", {"queue_name": "opt-q", "workflow_id": "b-4"})):
        try:  # DBOS lets the KeyError of options[...] through; pgfleet's error is a KeyError too
            client.enqueue(options, 1)
        except KeyError:
            see(label, "KeyError")


def classes(client):
    see("static", client.enqueue(opts("Counter.static_add", "k-1"), 1, 2).get_result())
    see("classmethod", client.enqueue(opts("Counter.class_add", "k-2", class_name="Counter"), 3, 4).get_result())
    see("instance", client.enqueue(opts("Named.add", "k-3", class_name="Named", instance_name="ten"), 5).get_result())
    see("instance row", fields(client.retrieve_workflow("k-3").get_status()))


def in_transaction(client):
    engine = sa.create_engine(database_url().replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        h = client.enqueue_in_transaction(conn, opts("doubled", "t-1"), 11)
    see("committed enqueue", h.get_result())
    try:
        with engine.begin() as conn:
            client.enqueue_in_transaction(conn, opts("doubled", "t-2"), 12)
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    attempt("rolled-back enqueue", lambda: client.retrieve_workflow("t-2").get_status().status)
    with engine.begin() as conn:
        attempt("return-existing in transaction", lambda: client.enqueue_in_transaction(
            conn, opts("doubled", "t-3", deduplication_id="q", duplication_policy="return-existing"), 1))
    engine.dispose()


if __name__ == "__main__":
    DBOS.launch()
    client = DBOSClient(system_database_url=database_url())
    each_option(client)
    duplicates(client)
    bad_options(client)
    classes(client)
    in_transaction(client)
    client.destroy()
    DBOS.destroy()
    report()
