"""DBOS.listen_queues: queues named by object or by name (a database-backed queue among them),
what it raises when called twice or after launch, and which queued work this process runs."""

import time

from dbos import DBOS, Queue
from observe import attempt, database_url, report, see

DBOS(config={"name": "diff-listen", "system_database_url": database_url()})
by_object = Queue("by-object")
by_name = Queue("by-name")
not_listened = Queue("not-listened")


@DBOS.workflow()
def echo(x):
    return x


def settle(handles, seconds=20.0):
    """Wait (bounded) until every handle's workflow left ENQUEUED/PENDING."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if all(h.get_status().status not in ("ENQUEUED", "PENDING") for h in handles):
            return
        time.sleep(0.1)


if __name__ == "__main__":
    see("listen_queues returns", DBOS.listen_queues([by_object, "by-name", "db-listened"]))
    attempt("listen_queues again", lambda: DBOS.listen_queues([by_object]))
    DBOS.launch()
    attempt("listen_queues after launch", lambda: DBOS.listen_queues(["by-name"]))
    db_listened = DBOS.register_queue("db-listened")
    db_not_listened = DBOS.register_queue("db-not-listened")
    ran = [q.enqueue(echo, q.name) for q in (by_object, by_name, db_listened)]
    idle = [q.enqueue(echo, q.name) for q in (not_listened, db_not_listened)]
    see("listened queues' results", [h.get_result() for h in ran])
    settle(idle, seconds=3.0)  # time for a wrong claim to happen: these must stay queued
    see("unlistened queues' statuses", [h.get_status().status for h in idle])
    report()
    DBOS.destroy()
