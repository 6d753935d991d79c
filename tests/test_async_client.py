"""DBOSClient's _async methods: database work in the client's own bounded worker threads,
waits on the caller's loop (no thread parked per waiter), DBOS's errors, and destroy()
ending waits and closing the threads."""

from __future__ import annotations

import asyncio
import threading

import pytest

from conftest import wait_until
from runtime import DBOS, DBOSAwaitedWorkflowCancelledError, DBOSClient, DBOSException, Queue

CLIENT_THREADS = "pgfleet-client-async"
POOL_SIZE = 4  # DBOSClient's default system_database_pool_size


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def _parked(wfid: str) -> dict[str, str]:
    # A queue nobody declares: the workflow stays ENQUEUED until cancelled.
    return {"workflow_name": "nobody_runs_this", "queue_name": "parked", "workflow_id": wfid}


class _ThreadPeak:
    """The most threads alive at once (in total, of the client's pool, of asyncio's default
    executor) while a monitor task runs on the loop: every loop turn is a sample."""

    def __init__(self) -> None:
        self.total = self.client = self.default_executor = 0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        while True:
            self.total = max(self.total, threading.active_count())
            self.client = max(self.client, len(_threads(CLIENT_THREADS)))
            self.default_executor = max(self.default_executor, len(_threads("asyncio_")))
            await asyncio.sleep(0.005)

    def __enter__(self) -> _ThreadPeak:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


def test_200_awaited_results_from_one_client_hold_a_bounded_number_of_threads(sys_url, db):
    async def main() -> list[BaseException | object]:
        client = DBOSClient(system_database_url=sys_url)
        try:
            handles = await asyncio.gather(*(client.enqueue_async(_parked(f"p-{i}")) for i in range(200)))
            baseline = threading.active_count()
            with _ThreadPeak() as peak:
                waits = [asyncio.ensure_future(h.get_result()) for h in handles]
                for _ in range(40):  # a window in which every waiter polls several times
                    await asyncio.sleep(0.025)
                assert not any(w.done() for w in waits)
                connections = db.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgfleet-client' AND datname = current_database()"
                ).fetchone()[0]
                await client.cancel_workflows_async([h.workflow_id for h in handles])
                outcomes = await asyncio.gather(*waits, return_exceptions=True)
            assert peak.client <= POOL_SIZE, peak.client
            assert peak.default_executor == 0, "a wait parked a thread of asyncio's default executor"
            assert peak.total <= baseline + POOL_SIZE, (peak.total, baseline)
            assert connections <= POOL_SIZE
            return outcomes
        finally:
            client.destroy()

    outcomes = asyncio.run(main())
    assert len(outcomes) == 200
    assert all(isinstance(o, DBOSAwaitedWorkflowCancelledError) for o in outcomes), {type(o) for o in outcomes}
    assert "Awaited workflow p-0 was cancelled" in str(outcomes[0])


def test_results_events_and_messages_wait_on_the_loop(dbos, sys_url):
    Queue("async-client-q")

    @DBOS.workflow(name="echo_when_told")
    def echo_when_told(tag):
        got = DBOS.recv("go", timeout_seconds=30)
        DBOS.set_event("echo", f"{tag}:{got}")
        return got

    async def main() -> tuple[list[object], list[object]]:
        client = DBOSClient(system_database_url=sys_url)
        try:
            with _ThreadPeak() as peak:
                handles = await asyncio.gather(*(
                    client.enqueue_async({"workflow_name": "echo_when_told", "queue_name": "async-client-q",
                                          "workflow_id": f"e-{i}"}, f"t{i}")
                    for i in range(20)
                ))
                events = [asyncio.ensure_future(client.get_event_async(h.workflow_id, "echo", 30)) for h in handles]
                await asyncio.gather(*(client.send_async(h.workflow_id, i, "go") for i, h in enumerate(handles)))
                values = await asyncio.gather(*events)
                results = await asyncio.gather(*(h.get_result() for h in handles))
            assert peak.client <= POOL_SIZE
            assert peak.default_executor == 0
            return values, results
        finally:
            client.destroy()

    values, results = asyncio.run(main())
    assert values == [f"t{i}:{i}" for i in range(20)]
    assert results == list(range(20))


def test_destroy_ends_waits_and_closes_the_worker_threads(sys_url):
    async def main() -> tuple[list[BaseException | object], list[object], DBOSClient]:
        client = DBOSClient(system_database_url=sys_url)
        handles = await asyncio.gather(*(client.enqueue_async(_parked(f"d-{i}")) for i in range(20)))
        waits = [asyncio.ensure_future(h.get_result()) for h in handles]
        waits.append(asyncio.ensure_future(client.get_event_async("d-0", "never", 60)))
        waits.append(asyncio.ensure_future(client.wait_first_async(handles, polling_interval_sec=0.05)))
        streamed: list[object] = []

        async def read() -> None:  # the stream of a workflow that never runs: open until destroy
            async for value in client.read_stream_async("d-0", "s"):
                streamed.append(value)

        reader = asyncio.ensure_future(read())
        await client.list_workflows_async()  # the waits have started meanwhile (reading, or between reads)
        assert _threads(CLIENT_THREADS), "the client's calls run in its own threads"
        client.destroy()
        outcomes = await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 10)
        await asyncio.wait_for(reader, 10)  # ends, as the sync read_stream ends at destroy
        return outcomes, streamed, client

    outcomes, streamed, client = asyncio.run(main())
    assert streamed == []
    assert all(isinstance(o, DBOSException) and "destroyed" in str(o) for o in outcomes), outcomes
    wait_until(lambda: not _threads(CLIENT_THREADS), "the client's worker threads to exit")
    with pytest.raises(DBOSException, match="destroyed"):
        asyncio.run(client.list_workflows_async())


def test_a_lazy_client_connects_in_a_worker_thread_and_errors_are_dbos_ones(sys_url):
    async def main() -> None:
        client = DBOSClient(system_database_url=sys_url, lazy=True)
        try:
            assert client._opened is None
            await client.check_connection_async()
            assert client._opened is not None
            with pytest.raises(ValueError, match="handles must not be empty"):
                await client.wait_first_async([])
            with pytest.raises(Exception, match="Non-existent target workflow ID: nope"):
                await client.retrieve_workflow_async("nope")
            assert (await client.retrieve_workflow_async("nope", existing_workflow=False)).workflow_id == "nope"
            with pytest.raises(Exception, match="Non-existent `send` destination workflow ID: nope"):
                await client.send_async("nope", 1)
            assert await client.get_event_async("nope", "k", timeout_seconds=0) is None
            assert [v async for v in client.read_stream_async("nope", "k")] == []
        finally:
            client.destroy()

    asyncio.run(main())


def test_cancelling_a_task_awaiting_a_result_leaves_the_other_waiters_and_the_workflow(sys_url):
    async def main() -> None:
        client = DBOSClient(system_database_url=sys_url)
        try:
            handle = await client.enqueue_async(_parked("c-0"))
            first, second = asyncio.ensure_future(handle.get_result()), asyncio.ensure_future(handle.get_result())
            await client.list_workflows_async()  # both waits have started meanwhile
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            assert not second.done()
            assert (await handle.get_status()).status == "ENQUEUED"
            await client.cancel_workflow_async("c-0")
            with pytest.raises(DBOSAwaitedWorkflowCancelledError):
                await second
        finally:
            client.destroy()

    asyncio.run(main())


def test_a_sync_call_that_blocks_the_loop_logs_dbos_warning_and_its_twin_does_not(sys_url, caplog):
    import logging

    async def main() -> None:
        client = DBOSClient(system_database_url=sys_url)
        try:
            with caplog.at_level(logging.WARNING, logger="dbos"):
                client.list_queues()
                await client.list_queues_async()
                await client.check_connection_async()
        finally:
            client.destroy()

    asyncio.run(main())
    warned = [r.getMessage() for r in caplog.records if "Synchronous" in r.getMessage()]
    assert len(warned) == 1, warned
    assert "Synchronous 'DBOSClient.list_queues' was called from a running asyncio event loop" in warned[0]
    assert "Use 'DBOSClient.list_queues_async' instead." in warned[0]
