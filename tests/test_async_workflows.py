"""Async workflows in one process, beyond what the differential programs show: many at once on
bounded threads and connections, gathered children, a cancel from this process, and the starts
pgfleet runs where dbos 2.30 fails (a sync workflow through ``start_workflow_async``)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from runtime import DBOS, DBOSAwaitedWorkflowCancelledError, SetWorkflowID

POOL_SIZE = 8
# Issue #11's thousand awaited workflows at once (about 5 s here).
MANY = 1000
# Connections an executor holds outside its pool (LISTEN, the leader's lease session, ...), with room.
DEDICATED_CONNECTIONS = 5


@pytest.fixture
def small_pool_dbos(sys_url: str) -> Iterator[type]:
    """A launched DBOS whose system-database pool holds ``POOL_SIZE`` connections."""
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-async-test", "system_database_url": sys_url, "executor_id": "async-executor",
                 "sys_db_pool_size": POOL_SIZE})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def step_rows(db: psycopg.Connection, workflow_id: str) -> list[tuple[int, str, str | None]]:
    return db.execute(
        "SELECT function_id, function_name, child_workflow_id FROM dbos.operation_outputs WHERE workflow_uuid = %s"
        " ORDER BY function_id",
        (workflow_id,),
    ).fetchall()


class Peaks:
    """Samples, in a thread of its own, the process's thread count and the test database's
    connections (other than its own) until stopped; keeps the largest of each."""

    def __init__(self, url: str, pool: Any) -> None:
        self.threads = 0
        self.connections = 0
        self.pooled = 0
        self._url = url
        self._pool = pool
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peaks", daemon=True)

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        with psycopg.connect(self._url, autocommit=True) as conn:
            while True:
                self.threads = max(self.threads, threading.active_count())
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone() or (0,)
                self.connections = max(self.connections, count)
                self.pooled = max(self.pooled, self._pool.get_stats().get("pool_size", 0))
                if self._stop.wait(0.01):
                    return


def test_many_awaited_async_workflows_share_bounded_threads_and_connections(small_pool_dbos, sys_url, db):
    seen_threads: list[int] = []

    @DBOS.step()
    async def note(i: int) -> int:
        return i

    @DBOS.workflow()
    async def napper(i: int) -> int:
        await note(i)
        await DBOS.sleep_async(0.2)
        seen_threads.append(threading.active_count())
        return i

    async def main() -> list[int]:
        async def one(i: int) -> int:
            with SetWorkflowID(f"nap-{i}"):
                return await napper(i)

        return list(await asyncio.gather(*(one(i) for i in range(MANY))))

    idle_connections = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0]
    pool = DBOS._executor_or_raise("test").db._pool  # psycopg_pool's own count of what it opened
    with Peaks(sys_url, pool) as peaks:
        assert asyncio.run(main()) == list(range(MANY))
    finished = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND name LIKE '%napper'").fetchone()[0]
    assert finished == MANY
    assert step_rows(db, f"nap-{MANY - 1}") == [(1, note.__qualname__, None), (2, "DBOS.sleep", None)]
    # A thread per pool connection at most, not one per workflow (the test's own connection
    # in `db` and the sampler's are not the process's pool).
    assert max(seen_threads) < 60 and peaks.threads < 60, (max(seen_threads), peaks.threads)
    # The pool never grew past its size (and did grow: the load was real), and the server saw
    # no connection per workflow: at most the pool's, the executor's few dedicated ones (LISTEN,
    # leader lease, opened lazily) and this test's.
    assert 2 < peaks.pooled <= POOL_SIZE, peaks.pooled
    assert peaks.connections <= POOL_SIZE + DEDICATED_CONNECTIONS + 1, (peaks.connections, idle_connections)


def test_gathered_children_each_see_their_own_workflow_and_steps(dbos, db):
    @DBOS.step()
    async def whoami() -> list[object]:
        await asyncio.sleep(0)
        return [DBOS.workflow_id, DBOS.step_id]

    @DBOS.workflow()
    async def kid(i: int) -> list[object]:
        await asyncio.sleep(0.001 * (20 - i))  # later children finish first
        return [i, DBOS.workflow_id, await whoami(), DBOS.workflow_id]

    @DBOS.workflow()
    async def family() -> list[list[object]]:
        return list(await asyncio.gather(*(kid(i) for i in range(20))))

    with SetWorkflowID("family"):
        out = asyncio.run(family())
    # Children take their positions in call order (ids family-1, family-3, ...: each child's
    # DBOS.getResult takes the position after it), whatever order they finish in.
    ids = [row[2] for row in step_rows(db, "family") if row[1] == kid.__qualname__]
    assert out == [[i, ids[i], [ids[i], 1], ids[i]] for i in range(20)]
    assert len(set(ids)) == 20
    for child_id in ids:
        assert step_rows(db, child_id) == [(1, whoami.__qualname__, None)]


def test_a_cancel_from_this_process_stops_a_sleeping_async_workflow_before_its_next_step(dbos, db):
    ran: list[str] = []

    @DBOS.step()
    async def mark(label: str) -> str:
        ran.append(label)
        return label

    @DBOS.workflow()
    async def sleepy() -> str:
        await mark("before")
        await DBOS.sleep_async(0.01)
        await DBOS.sleep_async(0.5)
        await mark("after")
        return "done"

    def sleeps_recorded() -> int:
        return sum(1 for row in step_rows(db, "sleepy") if row[1] == "DBOS.sleep")

    async def main() -> None:
        with SetWorkflowID("sleepy"):
            handle = await DBOS.start_workflow_async(sleepy)
        # Cancel once the second sleep is recorded, so the cancel lands while it sleeps (an
        # event set before that sleep raced its checkpoint: a cancel first leaves no row).
        while await asyncio.to_thread(sleeps_recorded) < 2:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(DBOS.cancel_workflow, "sleepy")
        with pytest.raises(DBOSAwaitedWorkflowCancelledError):
            await handle.get_result()

    asyncio.run(main())
    assert ran == ["before"]
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'sleepy'").fetchone()[0] == "CANCELLED"
    assert [row[1] for row in step_rows(db, "sleepy")] == [mark.__qualname__, "DBOS.sleep", "DBOS.sleep"]


def test_a_cancel_from_this_process_stops_a_sync_workflow_before_its_next_step(dbos, db):
    ran: list[str] = []
    asleep = threading.Event()

    @DBOS.step()
    def mark(label: str) -> str:
        ran.append(label)
        return label

    @DBOS.workflow()
    def sleepy_sync() -> str:
        mark("before")
        DBOS.sleep(0.01)
        asleep.set()
        DBOS.sleep(0.5)
        mark("after")
        return "done"

    with SetWorkflowID("sleepy-sync"):
        handle = DBOS.start_workflow(sleepy_sync)
    assert asleep.wait(30)
    DBOS.cancel_workflow("sleepy-sync")
    with pytest.raises(DBOSAwaitedWorkflowCancelledError):
        handle.get_result()
    assert ran == ["before"]


def test_a_resume_after_a_cancel_runs_only_what_is_left(dbos, db):
    ran: list[str] = []
    asleep = threading.Event()

    @DBOS.step()
    async def mark(label: str) -> str:
        ran.append(label)
        return label

    @DBOS.workflow()
    async def resumable() -> list[str]:
        a, b = await asyncio.gather(mark("a"), mark("b"))
        await DBOS.sleep_async(0.01)
        asleep.set()
        await DBOS.sleep_async(0.3)
        return [a, b, await mark("c")]

    async def main() -> list[str]:
        with SetWorkflowID("resumable"):
            handle = await DBOS.start_workflow_async(resumable)
        while not asleep.is_set():
            await asyncio.sleep(0.005)
        await asyncio.to_thread(DBOS.cancel_workflow, "resumable")
        with pytest.raises(DBOSAwaitedWorkflowCancelledError):
            await handle.get_result()
        ran.clear()
        resumed = await asyncio.to_thread(DBOS.resume_workflow, "resumable")
        return await asyncio.to_thread(resumed.get_result)

    assert asyncio.run(main()) == ["a", "b", "c"]
    assert ran == ["c"]  # the resumed run replayed a, b and both sleeps
    assert [row[1] for row in step_rows(db, "resumable")] == [mark.__qualname__] * 2 + ["DBOS.sleep"] * 2 + [mark.__qualname__]


def test_a_sync_workflow_started_with_start_workflow_async_runs_in_a_thread(dbos, db):
    # dbos 2.30 awaits the sync body's return value and records a TypeError; pgfleet runs it.
    @DBOS.workflow()
    def plain(x: int) -> list[object]:
        return [x, threading.current_thread() is not threading.main_thread()]

    async def main() -> list[object]:
        with SetWorkflowID("plain-async-start"):
            handle = await DBOS.start_workflow_async(plain, 3)
        assert handle.get_workflow_id() == "plain-async-start"
        return await handle.get_result()

    assert asyncio.run(main()) == [3, True]
    assert db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'plain-async-start'").fetchone()[0] == "SUCCESS"


def test_an_async_workflow_started_from_sync_code_runs_on_the_background_loop(dbos, db):
    @DBOS.workflow()
    async def where() -> str:
        await DBOS.sleep_async(0.01)
        return threading.current_thread().name

    with SetWorkflowID("bg-where"):
        handle = DBOS.start_workflow(where)
    assert handle.get_result().startswith("pgfleet-loop-")
    assert step_rows(db, "bg-where") == [(1, "DBOS.sleep", None)]


def test_a_started_async_workflow_outlives_the_coroutine_that_started_it(dbos, db):
    release = asyncio.Event
    gate: dict[str, asyncio.Event] = {}

    @DBOS.workflow()
    async def long_one() -> str:
        await gate["go"].wait()
        return "finished"

    async def starter() -> str:
        with SetWorkflowID("outlives"):
            handle = await DBOS.start_workflow_async(long_one)
        return handle.get_workflow_id()

    async def main() -> object:
        gate["go"] = release()
        workflow_id = await starter()  # returned while the workflow waits
        status = await DBOS.get_workflow_status_async(workflow_id)
        assert status is not None and status.status == "PENDING"
        gate["go"].set()
        return await DBOS.get_result_async(workflow_id)

    assert asyncio.run(main()) == "finished"


def test_run_step_async_retries_and_records_one_step(dbos, db):
    attempts: list[float] = []

    async def sometimes() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ValueError("not yet")
        return "ok"

    @DBOS.workflow()
    async def runner() -> str:
        return await DBOS.run_step_async({"name": "sometimes", "retries_allowed": True, "interval_seconds": 0.01}, sometimes)

    with SetWorkflowID("runner"):
        assert asyncio.run(runner()) == "ok"
    assert len(attempts) == 3
    assert step_rows(db, "runner") == [(1, "sometimes", None)]


def test_an_async_workflow_left_pending_by_destroy_is_replayed_at_the_next_launch(sys_url, db):
    DBOS.destroy(destroy_registry=True)  # before the decorators below: they register in the new registry
    ran: list[str] = []
    asleep = threading.Event()
    config = {"name": "pgfleet-async-test", "system_database_url": sys_url, "executor_id": "async-recovery"}

    @DBOS.step()
    async def mark(label: str) -> str:
        ran.append(label)
        await asyncio.sleep(0)
        return label

    @DBOS.workflow()
    async def survivor() -> list[str]:
        a, b = await asyncio.gather(mark("a"), mark("b"))
        await DBOS.sleep_async(0.01)
        asleep.set()
        await DBOS.sleep_async(0.5)
        return [a, b, await mark("c")]

    try:
        DBOS(config=config)
        DBOS.launch()
        with SetWorkflowID("survivor"):
            DBOS.start_workflow(survivor)  # on the background loop
        assert asleep.wait(30)
        DBOS.destroy()  # cancels the loop's task: no outcome, left PENDING for this executor
        status = db.execute("SELECT status FROM dbos.workflow_status WHERE workflow_uuid = 'survivor'").fetchone()[0]
        assert status == "PENDING" and sorted(ran) == ["a", "b"]
        ran.clear()
        DBOS(config=config)
        DBOS.launch()  # recovers it, and replays the gathered steps and the sleeps
        assert DBOS.retrieve_workflow("survivor").get_result() == ["a", "b", "c"]
        assert ran == ["c"]
        assert [row[:2] for row in step_rows(db, "survivor")] == [
            (1, mark.__qualname__), (2, mark.__qualname__), (3, "DBOS.sleep"), (4, "DBOS.sleep"), (5, mark.__qualname__)
        ]
    finally:
        DBOS.destroy(destroy_registry=True)
