"""The hot writes of async workflows on psycopg's AsyncConnectionPool (``sysdb/async_pool.py``):
one pool per event loop, the sync pool's guarantees kept.

A step checkpoint or a finish whose COMMIT reply is lost (the proxy of ``tests/faults``) is
retried on a fresh async connection and recognised as its own; pools of a caller's loop and of
the background loop live side by side; a pool whose loop ended is dropped (its sockets closed)
when the next one opens; ``DBOS.destroy()`` leaves no connection of either behind.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Iterator

import psycopg
import pytest

from conftest import wait_until
from runtime import DBOS, SetWorkflowID
from test_lost_replies import BOUND_SEC, Effects, configure, status_of, steps_of, within
from tests.faults.proxy import PgProxy

POOL_SIZE = 6


@pytest.fixture
def proxy(sys_url: str) -> Iterator[PgProxy]:
    with PgProxy.start(sys_url) as proxy:
        yield proxy


@pytest.fixture
def fleet(proxy: PgProxy) -> Iterator[type]:
    """A launched DBOS whose every connection to the system database (the async pools' too)
    goes through ``proxy``."""
    configure(proxy)
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


@pytest.fixture
def small(sys_url: str) -> Iterator[type]:
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-apool", "system_database_url": sys_url, "executor_id": "apool-executor",
                 "sys_db_pool_size": POOL_SIZE})
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


def async_stats() -> dict[str, int]:
    return DBOS._executor_or_raise("test").db.async_pools.stats()


def others(db: psycopg.Connection) -> int:
    """Connections to the test's database other than this test's own."""
    return int(db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()[0])


def test_an_async_checkpoint_whose_reply_was_lost_counts_once_and_the_workflow_goes_on(fleet, proxy, db):
    effects = Effects()

    @DBOS.step()
    async def effect(x: int) -> int:
        return effects.add(x)

    @DBOS.workflow()
    async def stepper() -> int:
        return await effect(1) + await effect(2)

    async def main() -> int:
        with SetWorkflowID("async-stepper"):
            return await stepper()

    rule = proxy.drop_reply("-- Checkpoint one step")
    assert within(lambda: asyncio.run(main()), "an async workflow whose checkpoint reply was lost") == 3
    assert rule.fired.is_set()
    assert effects.calls == [1, 2]  # the retry found its own checkpoint: the body ran once
    assert status_of(db, "async-stepper") == "SUCCESS"
    assert len(steps_of(db, "async-stepper")) == 2  # one row per step, none twice
    # The checkpoints went through the async pool of asyncio.run's loop, closed as it ended.
    assert async_stats()["opened"] == 1 and async_stats()["pools"] == 0


def test_an_async_finish_whose_reply_was_lost_leaves_success_once(fleet, proxy, db):
    @DBOS.step()
    async def one() -> int:
        return 1

    @DBOS.workflow()
    async def finisher() -> int:
        return await one() + 41

    async def main() -> int:
        with SetWorkflowID("async-finisher"):
            return await finisher()

    rule = proxy.drop_reply("-- Record a workflow's outcome")
    assert within(lambda: asyncio.run(main()), "an async workflow whose finish reply was lost") == 42
    assert rule.fired.is_set()
    row = db.execute("SELECT status, output, error FROM dbos.workflow_status WHERE workflow_uuid = 'async-finisher'").fetchone()
    assert row[0] == "SUCCESS" and row[2] is None
    assert DBOS.retrieve_workflow("async-finisher").get_result() == 42


def test_a_callers_loop_and_the_background_loop_each_write_through_their_own_pool_at_once(small, db):
    seen: list[dict[str, int]] = []

    @DBOS.step()
    async def mark(i: int) -> int:
        return i

    @DBOS.workflow()
    async def both(i: int) -> int:
        await mark(i)
        await DBOS.sleep_async(0.05)
        return await mark(i + 1)

    async def main() -> list[int]:
        # Started from a thread: these run on the background loop, beside this loop's own.
        handles = await asyncio.to_thread(lambda: [DBOS.start_workflow(both, i) for i in range(10)])
        mine = await asyncio.gather(*(both(i) for i in range(10, 20)))
        seen.append(async_stats())
        return list(mine) + [await asyncio.to_thread(h.get_result) for h in handles]

    results = within(lambda: asyncio.run(main()), "workflows on two loops at once", BOUND_SEC)
    assert sorted(results) == sorted(i + 1 for i in range(20))
    assert seen[0]["pools"] == 2  # the caller's loop's and the background loop's, at once
    assert seen[0]["pool_size"] <= 2 * POOL_SIZE
    assert async_stats()["pools"] == 1  # the caller's closed with its loop
    done = db.execute("SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS' AND name LIKE '%both'").fetchone()[0]
    assert done == 20


def test_the_pool_of_a_loop_that_ended_is_dropped_when_the_next_loop_opens_one(small, db):
    @DBOS.step()
    async def mark() -> int:
        return 1

    @DBOS.workflow()
    async def short() -> int:
        return await mark()

    baseline = others(db)
    for i in range(6):  # six asyncio.run: six loops, one after the other
        assert asyncio.run(short()) == 1
        assert async_stats() == {"pools": 0, "opened": i + 1, "pool_size": 0}  # closed as its loop ended
    # Their connections were closed with them (the server drops a backend a moment later):
    # at most one async pool's beside what was there before.
    # A connection the pool was still opening as its loop ended escapes pool.close() (psycopg's
    # workers are cancelled with the loop); its socket closes when it is garbage-collected.
    gc.collect()
    wait_until(lambda: others(db) <= baseline + POOL_SIZE, "ended loops' pools' connections to close", 10)


def test_destroy_closes_the_async_pools_and_leaves_no_connection_behind(sys_url, db):
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "pgfleet-apool", "system_database_url": sys_url, "executor_id": "apool-executor",
                 "sys_db_pool_size": POOL_SIZE})
    DBOS.launch()
    try:
        @DBOS.step()
        async def mark(i: int) -> int:
            return i

        @DBOS.workflow()
        async def work(i: int) -> int:
            return await mark(i)

        assert asyncio.run(work(1)) == 1  # a caller's loop: its pool closes as the loop ends
        assert DBOS.start_workflow(work, 2).get_result() == 2  # the background loop's pool
        assert async_stats()["pools"] == 1  # the background loop's (asyncio.run's closed with its loop)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            DBOS.destroy(destroy_registry=True)
            gc.collect()
    finally:
        DBOS.destroy(destroy_registry=True)
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, [str(w.message) for w in leaks]
    wait_until(lambda: others(db) == 0, "every connection of the executor to close", 10)
