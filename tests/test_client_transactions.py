"""DBOSClient inside the caller's own transaction: ``send_in_transaction``,
``send_bulk_in_transaction`` and ``enqueue_in_transaction`` commit and roll back with it, on a
SQLAlchemy Connection or Session (as DBOS takes them) or on a plain psycopg connection."""

from __future__ import annotations

import psycopg
import pytest

from runtime import (
    DBOS,
    DBOSClient,
    DBOSException,
    DBOSNonExistentWorkflowError,
    DBOSQueueDeduplicatedError,
    Queue,
    SendMessage,
    SetWorkflowID,
)


@pytest.fixture
def client(dbos, sys_url):
    client = DBOSClient(system_database_url=sys_url)
    yield client
    client.destroy()


def _inbox(workflow_id: str, count: int):
    @DBOS.workflow(name="tx_inbox")
    def tx_inbox(n):
        return [DBOS.recv("t", timeout_seconds=0.5 if i else 10) for i in range(n)]

    with SetWorkflowID(workflow_id):
        return DBOS.start_workflow(tx_inbox, count)


def _messages(db, destination: str) -> list[str]:
    return [r[0] for r in db.execute("SELECT message_uuid FROM dbos.notifications WHERE destination_uuid = %s ORDER BY 1", (destination,))]


def test_psycopg_connection_commits_and_rolls_back_with_the_caller(client, sys_url, db):
    inbox = _inbox("tx-inbox", 3)
    with psycopg.connect(sys_url) as conn:  # not autocommit: the caller's transaction
        client.send_in_transaction(conn, "tx-inbox", "rolled back", "t", "key-rb")
        assert _messages(db, "tx-inbox") == []  # not visible before the commit
        conn.rollback()
        client.send_in_transaction(conn, "tx-inbox", "first", "t", "key-1")
        client.send_bulk_in_transaction(conn, [SendMessage("tx-inbox", "second", "t"), SendMessage("tx-inbox", "third", "t")])
        conn.commit()
    assert inbox.get_result(timeout_seconds=10) == ["first", "second", "third"]
    assert "key-1::tx-inbox" in _messages(db, "tx-inbox") and "key-rb::tx-inbox" not in _messages(db, "tx-inbox")


def test_sqlalchemy_connection_and_session(client, sys_url, db):
    sa = pytest.importorskip("sqlalchemy")
    orm = pytest.importorskip("sqlalchemy.orm")
    inbox = _inbox("sa-inbox", 2)
    engine = sa.create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(sys_url))
    try:
        with pytest.raises(RuntimeError), engine.begin() as conn:
            client.send_in_transaction(conn, "sa-inbox", "rolled back", "t")
            raise RuntimeError("the caller's transaction fails")
        with engine.connect() as conn:  # SQLAlchemy's autobegin: the send begins the transaction
            client.send_in_transaction(conn, "sa-inbox", "from a connection", "t")
            conn.commit()
        with orm.Session(engine) as session, session.begin():
            client.send_bulk_in_transaction(session, [SendMessage("sa-inbox", "from a session", "t")])
        assert inbox.get_result(timeout_seconds=10) == ["from a connection", "from a session"]
        with pytest.raises(DBOSNonExistentWorkflowError, match="Non-existent `send` destination workflow ID: nowhere"):
            with engine.begin() as conn:
                client.send_in_transaction(conn, "nowhere", 1)
    finally:
        engine.dispose()
    assert len(_messages(db, "sa-inbox")) == 2


def test_enqueue_in_transaction_queues_on_commit_only(client, sys_url, db):
    Queue("tx-q", polling_interval_sec=0.1)

    @DBOS.workflow(name="tx_job")
    def tx_job(x):
        return x * 2

    with psycopg.connect(sys_url) as conn:
        client.enqueue_in_transaction(conn, {"workflow_name": "tx_job", "queue_name": "tx-q", "workflow_id": "tx-rb"}, 1)
        conn.rollback()
        handle = client.enqueue_in_transaction(
            conn, {"workflow_name": "tx_job", "queue_name": "tx-q", "workflow_id": "tx-ok", "deduplication_id": "d"}, 21
        )
        assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = 'tx-ok'").fetchone()[0] == 0
        conn.commit()
        with pytest.raises(DBOSQueueDeduplicatedError):
            client.enqueue_in_transaction(conn, {"workflow_name": "tx_job", "queue_name": "tx-q", "deduplication_id": "d"}, 2)
        conn.rollback()
    assert handle.get_result(timeout_seconds=10) == 42
    assert db.execute("SELECT count(*) FROM dbos.workflow_status WHERE workflow_uuid = 'tx-rb'").fetchone()[0] == 0
    with pytest.raises(DBOSException, match="return-existing' is not supported by enqueue_in_transaction"):
        client.enqueue_in_transaction(None, {"workflow_name": "tx_job", "queue_name": "tx-q", "duplication_policy": "return-existing"})
    with pytest.raises(DBOSException, match="takes a SQLAlchemy Connection or Session"):
        client.send_in_transaction(object(), "tx-ok", 1)
