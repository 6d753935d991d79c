"""``DBOS.listen_queues`` as DBOS 2.30 has it: queues named by object or by name (a
database-backed one too), once, after ``DBOS()`` and before launch; what the process serves is
what its membership row says; and the launch and ``register_queue`` log lines name the queues
it listens to, in DBOS's words."""

from __future__ import annotations

import time

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSException, Queue


@pytest.fixture
def fresh() -> object:
    DBOS.destroy(destroy_registry=True)
    yield
    DBOS.destroy(destroy_registry=True)


def _config(sys_url: str) -> dict[str, object]:
    return {"name": "listen-names", "system_database_url": sys_url, "executor_id": "listener"}


def test_listen_queues_takes_names_and_serves_a_database_backed_queue(sys_url, db, fresh):
    by_object = Queue("by-object", polling_interval_sec=0.1)
    ignored = Queue("ignored", polling_interval_sec=0.1)

    @DBOS.workflow(name="listen_echo")
    def echo(x: str) -> str:
        return x

    DBOS(config=_config(sys_url))
    DBOS.listen_queues([by_object, "db-served"])
    DBOS.launch()
    served = DBOS.register_queue("db-served", polling_interval_sec=0.1)
    not_served = DBOS.register_queue("db-ignored", polling_interval_sec=0.1)
    assert by_object.enqueue(echo, "a").get_result(timeout_seconds=20) == "a"
    assert served.enqueue(echo, "b").get_result(timeout_seconds=20) == "b"
    waiting = [ignored.enqueue(echo, "c"), not_served.enqueue(echo, "d")]
    time.sleep(0.5)  # several polling intervals: a wrong claim would have happened
    assert [h.get_status().status for h in waiting] == ["ENQUEUED", "ENQUEUED"]
    [queues] = db.execute("SELECT queues FROM dbos.pgfleet_executors WHERE executor_id = 'listener'").fetchone()
    assert queues == ["by-object", "db-served"]  # `pgfleet status` shows what this process serves


def test_listen_queues_is_refused_as_dbos_refuses_it(sys_url, fresh):
    with pytest.raises(DBOSException, match="No DBOS was created yet"):
        DBOS.listen_queues(["q"])
    DBOS(config=_config(sys_url))
    with pytest.raises(DBOSException, match="takes a list of queues or queue names, got 'q'"):
        DBOS.listen_queues("q")  # type: ignore[arg-type]
    with pytest.raises(DBOSException, match="takes Queue objects or queue names, got 3"):
        DBOS.listen_queues(["q", 3])  # type: ignore[list-item]
    DBOS.listen_queues(["q"])
    with pytest.raises(DBOSException, match="listen_queues called more than once"):
        DBOS.listen_queues(["q"])
    DBOS.launch()
    with pytest.raises(DBOSException, match="listen_queues called after DBOS is launched"):
        DBOS.listen_queues(["q"])
    # A new DBOS() is a new process: it has listened to nothing yet (as a new DBOS instance).
    DBOS.destroy()
    DBOS(config=_config(sys_url))
    DBOS.listen_queues(["other"])


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The events of the ``dbos`` logger's records (the text DBOS would log)."""
    return [r.pgfleet_event["event"] for r in caplog.records if r.name == "dbos" and hasattr(r, "pgfleet_event")]


def test_launch_and_register_queue_log_the_listened_queues(sys_url, fresh, caplog):
    caplog.set_level("INFO", logger="dbos")
    Queue("limited", concurrency=2, limiter={"limit": 5, "period": 2.0}, priority_enabled=True)
    Queue("unlistened")
    DBOS(config=_config(sys_url))
    DBOS.listen_queues(["limited", "db-listened"])
    DBOS.launch()
    wait_until(lambda: "Listening to 1 queues:" in _messages(caplog), what="the launch's queue list")
    messages = _messages(caplog)
    at = messages.index("Listening to 1 queues:")
    assert messages[at + 1] == "Queue: limited (concurrency=2, limit=5/2.0s, priority)"
    DBOS.register_queue("db-listened", worker_concurrency=3, partition_queue=True)
    DBOS.register_queue("db-other")
    DBOS.register_queue("db-other")  # not new: nothing logged
    assert _messages(caplog)[-4:] == [
        "Registered and listening to new queue:",
        "Queue: db-listened (worker_concurrency=3, partitioned)",
        "Registered new queue (not listening):",
        "Queue: db-other",
    ]
