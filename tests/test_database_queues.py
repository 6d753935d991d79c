"""Database-backed queues (``DBOS.register_queue``) across executors, application versions, and
enqueueing by name.

A database-backed queue's limits live in its ``dbos.queues`` row, which every claim reads under
the queue's claim lock: a setter's change holds for the whole fleet from the next claim. The
fleet tests run two executors (process objects in one interpreter) whose workflow bodies count
how many run at once and wait on events the test sets; claim passes are run directly
(``claim_once``) where the test needs to know that both executors have tried to claim.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest

from conftest import wait_until
from runtime import DBOS, DBOSClient, Queue, SetEnqueueOptions
from runtime.config import resolve_config
from runtime.process import DBOSProcess
from runtime.registry import registry

A, B = "dyn-a", "dyn-b"
APP = "dynq"
DEADLINE_SEC = 30.0


@pytest.fixture
def build(sys_url: str) -> Iterator[Callable[..., DBOSProcess]]:
    """``build(executor_id)``: a launched process object of application APP (destroyed afterwards)."""
    DBOS.destroy(destroy_registry=True)
    built: list[DBOSProcess] = []

    def make(executor_id: str, **settings: object) -> DBOSProcess:
        config = resolve_config({"name": APP, "system_database_url": sys_url, "executor_id": executor_id,
                                 "sys_db_pool_size": 8, "application_version": "dyn-v1", **settings})
        process = DBOSProcess(config, registry)
        built.append(process)
        process.launch()
        return process

    yield make
    for process in built:
        process.destroy()
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def client(sys_url: str) -> Iterator[DBOSClient]:
    c = DBOSClient(system_database_url=sys_url)
    yield c
    c.destroy()


class Gauge:
    """How many workflow bodies run at once, and the most seen in each phase of a test."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.phase = "start"
        self.peaks: dict[str, int] = {}
        self.started: list[str] = []
        self.gate = threading.Event()  # bodies wait on it (bounded) until the test opens it

    def enter(self, workflow_id: str) -> None:
        with self.lock:
            self.running += 1
            self.started.append(workflow_id)
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), self.running)

    def leave(self) -> None:
        with self.lock:
            self.running -= 1


def pending(db: psycopg.Connection, queue_name: str) -> int:
    (n,) = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name = %s AND status = 'PENDING'", (queue_name,)).fetchone()
    return int(n)


def succeeded(db: psycopg.Connection, queue_name: str) -> int:
    (n,) = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name = %s AND status = 'SUCCESS'", (queue_name,)).fetchone()
    return int(n)


def claim_everywhere(*processes: DBOSProcess) -> int:
    """One claim pass of every executor, now (in addition to their own loops)."""
    total = 0
    for process in processes:
        assert process.services is not None
        total += process.services.claimer.claim_once()
    return total


def test_a_concurrency_change_holds_fleet_wide_and_is_never_exceeded(build, client, db):
    gauge = Gauge()

    @DBOS.step(name="dyn_body")
    def body() -> None:
        gauge.enter(DBOS.workflow_id or "")
        try:
            assert gauge.gate.wait(DEADLINE_SEC), "the test never opened the gate"
        finally:
            gauge.leave()

    @DBOS.workflow(name="dyn_job")
    def job(n: int) -> int:
        body()
        return n

    # Registered by a client, owned by the application: both executors learn of it from the
    # database alone (and the client, not either executor, changes its limits below).
    client.register_queue("dyn", concurrency=2, application_name=APP)
    a, b = build(A), build(B)
    queue = Queue("dyn", database_backed_queue=True, client_system_database=client._db)
    handles = [(a if n % 2 else b).enqueue(queue, job, n) for n in range(12)]

    wait_until(lambda: gauge.running == 2, "two bodies to run under concurrency 2")
    assert claim_everywhere(a, b) == 0  # both executors tried again: the limit holds
    assert gauge.running == 2 and pending(db, "dyn") == 2

    gauge.phase = "raised"
    queue.set_concurrency(5)
    # Within one claim cycle: the next claim pass of the executors (theirs or these) reads the
    # new limit from the row, whatever their cached view of the queue says.
    claim_everywhere(a, b)
    assert pending(db, "dyn") == 5
    wait_until(lambda: gauge.running == 5, "five bodies to run once concurrency is 5")
    assert claim_everywhere(a, b) == 0
    assert gauge.running == 5 and pending(db, "dyn") == 5
    owners = {e for (e,) in db.execute("SELECT executor_id FROM dbos.workflow_status WHERE queue_name='dyn' AND status='PENDING'")}
    print(f"running under concurrency 5 on {owners}")

    # Lowered while five run: nothing more starts until fewer than one runs, then one at a time.
    queue.set_concurrency(1)
    assert claim_everywhere(a, b) == 0
    gauge.phase = "lowered"
    gauge.gate.set()
    wait_until(lambda: succeeded(db, "dyn") == 12, "all twelve workflows to finish", timeout=60)
    assert sorted(h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles) == list(range(12))
    assert gauge.peaks == {"start": 2, "raised": 5, "lowered": 1}, gauge.peaks
    assert len(gauge.started) == 12  # every body ran once


def test_worker_concurrency_set_from_a_client_caps_each_executor(build, client, db):
    gauge = Gauge()
    per_executor: dict[str, int] = {}
    peaks: dict[str, int] = {}
    lock = threading.Lock()

    @DBOS.step(name="wc_body")
    def body() -> None:
        me = DBOS.executor_id
        with lock:
            per_executor[me] = per_executor.get(me, 0) + 1
            peaks[me] = max(peaks.get(me, 0), per_executor[me])
        try:
            assert gauge.gate.wait(DEADLINE_SEC)
        finally:
            with lock:
                per_executor[me] -= 1

    @DBOS.workflow(name="wc_job")
    def job(n: int) -> int:
        body()
        return n

    q = client.register_queue("wc", worker_concurrency=1, application_name=APP)
    a, b = build(A), build(B)
    for n in range(8):
        a.enqueue(Queue("wc", database_backed_queue=True), job, n)
    wait_until(lambda: per_executor == {A: 1, B: 1}, "one body on each executor")
    assert claim_everywhere(a, b) == 0 and pending(db, "wc") == 2
    q.set_worker_concurrency(3)
    claim_everywhere(a, b)  # the next pass of each executor reads the new cap from the row
    assert pending(db, "wc") == 6
    wait_until(lambda: per_executor == {A: 3, B: 3}, "three bodies on each executor")
    gauge.gate.set()
    wait_until(lambda: succeeded(db, "wc") == 8, "all eight to finish")
    assert peaks == {A: 3, B: 3}


def test_a_deleted_queue_is_no_longer_claimed_and_its_work_stays_queued(build, client, db):
    @DBOS.workflow(name="del_job")
    def job(n: int) -> int:
        return n

    client.register_queue("doomed", concurrency=0, application_name=APP)  # paused: nothing runs yet
    a = build(A)
    queue = Queue("doomed", database_backed_queue=True)
    handles = [a.enqueue(queue, job, n) for n in range(3)]
    assert claim_everywhere(a) == 0
    client.delete_queue("doomed")
    assert client.retrieve_queue("doomed") is None
    assert claim_everywhere(a) == 0  # no row: the claim reads no limits and claims nothing
    statuses = {s for (s,) in db.execute("SELECT status FROM dbos.workflow_status WHERE queue_name = 'doomed'")}
    assert statuses == {"ENQUEUED"}
    # Registered again (unpaused), the queue is served again and its work runs.
    client.register_queue("doomed", application_name=APP)
    assert [h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles] == [0, 1, 2]


def test_a_queue_declared_in_code_wins_over_a_database_row_of_the_same_name(build, client, db):
    gauge = Gauge()

    @DBOS.step(name="shadow_body")
    def body() -> None:
        gauge.enter(DBOS.workflow_id or "")
        try:
            assert gauge.gate.wait(DEADLINE_SEC)
        finally:
            gauge.leave()

    @DBOS.workflow(name="shadow_job")
    def job(n: int) -> int:
        body()
        return n

    declared = Queue("shadowed", concurrency=1)
    client.register_queue("shadowed", concurrency=10, application_name=APP)
    a = build(A)
    for n in range(4):
        a.enqueue(declared, job, n)
    wait_until(lambda: gauge.running == 1, "one body under the code's concurrency 1")
    assert claim_everywhere(a) == 0 and gauge.running == 1
    gauge.gate.set()
    wait_until(lambda: succeeded(db, "shadowed") == 4, "all four to finish")
    assert gauge.peaks == {"start": 1}


def test_a_partitioned_database_backed_queue_limits_each_partition(build, client, db):
    running: dict[str, int] = {}
    peaks: dict[str, int] = {}
    lock = threading.Lock()
    gate = threading.Event()

    @DBOS.step(name="part_body")
    def body(key: str) -> None:
        with lock:
            running[key] = running.get(key, 0) + 1
            peaks[key] = max(peaks.get(key, 0), running[key])
        try:
            assert gate.wait(DEADLINE_SEC)
        finally:
            with lock:
                running[key] -= 1

    @DBOS.workflow(name="part_job")
    def job(key: str) -> str:
        body(key)
        return key

    client.register_queue("parts", concurrency=1, partition_queue=True, application_name=APP)
    a, b = build(A), build(B)
    queue = Queue("parts", database_backed_queue=True)
    for n in range(6):
        key = "p1" if n % 2 else "p2"
        with SetEnqueueOptions(queue_partition_key=key):
            (a if n < 3 else b).enqueue(queue, job, key)
    wait_until(lambda: running == {"p1": 1, "p2": 1}, "one body per partition")
    assert claim_everywhere(a, b) == 0
    gate.set()
    wait_until(lambda: succeeded(db, "parts") == 6, "all six to finish")
    assert peaks == {"p1": 1, "p2": 1}


def test_a_rate_limit_read_from_the_row_holds_and_its_removal_frees_the_rest(build, client, db):
    @DBOS.workflow(name="rated_job")
    def job(n: int) -> int:
        return n

    q = client.register_queue("rated-db", limiter={"limit": 2, "period": 600.0}, application_name=APP)
    a, b = build(A), build(B)
    queue = Queue("rated-db", database_backed_queue=True)
    handles = [a.enqueue(queue, job, n) for n in range(5)]
    wait_until(lambda: succeeded(db, "rated-db") == 2, "two starts within the window")
    assert claim_everywhere(a, b) == 0 and succeeded(db, "rated-db") + pending(db, "rated-db") == 2
    rated = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'rated-db' AND rate_limited").fetchone()
    assert rated == (2,)  # the starts count against the row's limiter
    q.set_limiter(None)
    assert sorted(h.get_result(timeout_seconds=DEADLINE_SEC) for h in handles) == [0, 1, 2, 3, 4]


def test_an_executor_finds_a_queue_registered_elsewhere_through_its_idle_probe(build, client, db):
    """No NOTIFY (use_listen_notify off) and long before the 30 s re-read: the claimer's own
    probe names the unknown queue that has work, and the next pass claims from it."""

    @DBOS.workflow(name="found_job")
    def job(n: int) -> int:
        return n

    a = build(A, use_listen_notify=False)
    client.register_queue("found-later", application_name=APP)
    handle = client.enqueue({"workflow_name": "found_job", "queue_name": "found-later"}, 5)
    assert a.services is not None
    claim_everywhere(a)  # the probe finds it (and the re-read learns it), if the claimer's own loop did not yet
    assert a.services.database_queues.knows("found-later")
    claim_everywhere(a)
    status = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = %s", (handle.workflow_id,)).fetchone()
    assert status != ("ENQUEUED",)
    assert handle.get_result(timeout_seconds=DEADLINE_SEC) == 5


# -- across real processes ---------------------------------------------------------------------


def test_a_concurrency_change_holds_across_processes(sys_url, tmp_path, client, db):
    """Two worker processes serve a queue they know only from the database; a client raises its
    concurrency from 1 to 3 mid-drain. Every body that started before the change ran alone
    (it was claimed under 1), never more than 3 ran at once, and the raised limit was used."""
    from test_queue_processes import Workers, max_overlap

    db.execute("CREATE TABLE public.q_ledger (workflow_id text, executor text, started float8, ended float8)")
    client.register_queue("dynp", concurrency=1, application_name="queue-worker")
    fleet = Workers(sys_url, tmp_path)
    try:
        for executor_id in ("dynp-1", "dynp-2"):
            fleet.start("dynamic", executor_id)
        fleet.wait_ready("dynp-1", "dynp-2")
        handles = [client.enqueue({"workflow_name": "dyn_task", "queue_name": "dynp"}, n) for n in range(40)]
        wait_until(lambda: db.execute("SELECT count(*) FROM public.q_ledger").fetchone()[0] >= 4, "four bodies under concurrency 1")
        changed_at = time.time()  # before the setter commits: no claim under 3 starts earlier
        client.retrieve_queue("dynp").set_concurrency(3)
        assert sorted(h.get_result(timeout_seconds=60) for h in handles) == list(range(40))
        rows = db.execute("SELECT started, ended, executor FROM public.q_ledger").fetchall()
        assert len(rows) == 40
        before = [(s, e) for s, e, _ in rows if s < changed_at]
        after = [(s, e) for s, e, _ in rows if s >= changed_at]
        assert len(before) >= 4 and max_overlap(before) == 1, before
        assert max_overlap([(s, e) for s, e, _ in rows]) <= 3
        assert max_overlap(after) >= 2, "the raised concurrency was never used"
        print(f"dynp: {len(before)} before the change, peak after {max_overlap(after)}, "
              f"by executor {sorted({x for _, _, x in rows})}")
        for executor_id in ("dynp-1", "dynp-2"):
            fleet.stop(executor_id)
    finally:
        fleet.kill_all()


def test_an_executor_serves_only_its_applications_and_its_served_database_backed_queues(build, client, db):
    @DBOS.workflow(name="scoped_job")
    def job(n: int) -> int:
        return n

    client.register_queue("theirs", application_name="other-app")  # another application's
    client.register_queue("unlisted", application_name=APP)  # ours, but not in a's `queues`
    client.register_queue("listed", application_name=APP)
    a = build(A, queues=["listed"])
    handles = {name: client.enqueue({"workflow_name": "scoped_job", "queue_name": name}, 1) for name in ("theirs", "unlisted", "listed")}
    for _ in range(2):  # a probe (which would discover them) and a claim pass
        claim_everywhere(a)
    assert handles["listed"].get_result(timeout_seconds=DEADLINE_SEC) == 1
    claim_everywhere(a)
    left = dict(db.execute("SELECT queue_name, status FROM dbos.workflow_status WHERE queue_name IN ('theirs', 'unlisted')").fetchall())
    assert left == {"theirs": "ENQUEUED", "unlisted": "ENQUEUED"}
    assert a.services is not None
    assert not a.services.database_queues.knows("theirs") and not a.services.database_queues.knows("unlisted")
