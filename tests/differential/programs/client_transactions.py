"""DBOSClient inside the caller's own SQLAlchemy transaction: send_in_transaction,
send_bulk_in_transaction and enqueue_in_transaction commit and roll back with it."""

import sqlalchemy as sa
from dbos import DBOS, DBOSClient, Queue, SendMessage, SetWorkflowID
from observe import attempt, database_url, report, see
from sqlalchemy.orm import Session

DBOS(config={"name": "differential-client-tx", "system_database_url": database_url()})
queue = Queue("tx-queue")


@DBOS.workflow()
def inbox(count):
    return [DBOS.recv("t", timeout_seconds=10 if i == 0 else 1) for i in range(count)]


@DBOS.workflow()
def doubled(x):
    return 2 * x


if __name__ == "__main__":
    DBOS.launch()
    client = DBOSClient(system_database_url=database_url())
    engine = sa.create_engine(database_url().replace("postgresql://", "postgresql+psycopg://", 1))
    with SetWorkflowID("tx-inbox"):
        handle = DBOS.start_workflow(inbox, 4)

    def rolled_back():
        with engine.begin() as conn:
            client.send_in_transaction(conn, "tx-inbox", "rolled back", "t")
            client.enqueue_in_transaction(conn, {"workflow_name": "doubled", "queue_name": "tx-queue", "workflow_id": "never"}, 1)
            raise RuntimeError("the caller's transaction fails")

    attempt("rolled back", rolled_back)
    with engine.begin() as conn:
        client.send_in_transaction(conn, "tx-inbox", "committed", "t", "key-1")
        client.send_bulk_in_transaction(conn, [SendMessage("tx-inbox", "bulk", "t")])
        queued = client.enqueue_in_transaction(conn, {"workflow_name": "doubled", "queue_name": "tx-queue", "workflow_id": "tx-job"}, 21)
    with Session(engine) as session, session.begin():
        client.send_in_transaction(session, "tx-inbox", "from a session", "t")
    see("inbox got", handle.get_result())
    see("enqueued job", queued.get_result())
    see("rolled back job exists", DBOS.get_workflow_status("never") is not None)

    def to_nowhere():
        with engine.begin() as conn:
            client.send_in_transaction(conn, "nowhere", 1)

    attempt("send to nowhere", to_nowhere)
    engine.dispose()
    client.destroy()
    DBOS.destroy()
    report()
