"""Lost replies on the hot writes of async workflows (issue #11): an async step's checkpoint
or an async workflow's finish whose COMMIT reply is lost (the proxy of ``tests/faults``) is
retried and recognised as its own, as the sync writes are (tests/test_lost_replies.py).

These writes run in the executor's worker threads over the sync pool (``runtime/aio.py``);
``ops/bench/RESULTS.md`` ("Hot path on the async pool") says why they are not on psycopg's
AsyncConnectionPool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from runtime import DBOS, SetWorkflowID
from test_lost_replies import Effects, configure, status_of, steps_of, within
from tests.faults.proxy import PgProxy


@pytest.fixture
def proxy(sys_url: str) -> Iterator[PgProxy]:
    with PgProxy.start(sys_url) as proxy:
        yield proxy


@pytest.fixture
def fleet(proxy: PgProxy) -> Iterator[type]:
    """A launched DBOS whose every connection to the system database goes through ``proxy``."""
    configure(proxy)
    DBOS.launch()
    yield DBOS
    DBOS.destroy(destroy_registry=True)


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


def test_a_sync_finish_whose_reply_was_lost_leaves_success_once(fleet, proxy, db):
    @DBOS.workflow()
    def sync_finisher() -> int:
        return 42

    def start() -> int:
        with SetWorkflowID("sync-finisher"):
            return sync_finisher()

    rule = proxy.drop_reply("-- Record a workflow's outcome")
    assert within(start, "a sync workflow whose finish reply was lost") == 42
    assert rule.fired.is_set()
    assert status_of(db, "sync-finisher") == "SUCCESS"
    assert DBOS.retrieve_workflow("sync-finisher").get_result() == 42
