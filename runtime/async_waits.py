"""The waiting ``_async`` operations: ``recv_async``, ``get_event_async``, ``read_stream_async``
and ``wait_first_async``, sharing their logic with the sync ones.

Each runs the same steps as its sync twin in :mod:`runtime.messages`, :mod:`runtime.streams`
and :mod:`runtime.waiting` (positions and replay taken on the loop, in call order; one
database look at a time in a worker thread, :func:`runtime.aio.in_thread`), but waits on the
loop: a ``recv_async`` or ``get_event_async`` on its :class:`~runtime.notifications.Watch`
(woken by the NOTIFY, re-checking at least once a second), the polls with ``asyncio.sleep``.
So a thousand tasks waiting at once hold no thread, and the timeouts are durable as in the
sync versions (a ``DBOS.sleep`` row at the second position).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sysdb import now_ms

from . import messages as messaging
from .aio import active_workflow, in_thread
from .async_steps import sleep_unless_stopped
from .operations import NOT_RECORDED, ExecutorShutdown
from .serialization import serialize
from .streams import READ_POLL_SEC, read_batch
from .tracing import operation_span
from .waiting import first_finished_once, handle_ids, polling_interval, refuse_in_transaction

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["recv_async", "get_event_async", "read_stream_async", "wait_first_async"]

H = TypeVar("H")
# A waiter re-checks the database at least this often, in case a NOTIFY was lost.
RECHECK_INTERVAL_SEC = messaging.RECHECK_INTERVAL_SEC
# How long a stream reader sleeps at most before it looks whether its executor is stopping.
STOP_CHECK_INTERVAL_SEC = 1.0


async def recv_async(executor: Executor, topic: str | None, timeout_seconds: float) -> Any:
    """``DBOS.recv`` awaited on the loop: the oldest message on ``topic``, or None after the
    (durable) timeout."""
    with operation_span("recv"):
        return await _recv_async(executor, topic, timeout_seconds)


async def _recv_async(executor: Executor, topic: str | None, timeout_seconds: float) -> Any:
    receive, replayed = messaging.begin_recv(executor, topic)
    if receive is None:
        return replayed
    work = executor.async_work
    with executor.hub.watch(receive.key) as watch:
        wake_at, found = await in_thread(work, messaging.arm_recv, executor, receive, timeout_seconds)
        while not found:
            remaining = wake_at - time.time()
            if remaining <= 0:
                break
            await watch.wait_async(min(remaining, RECHECK_INTERVAL_SEC))
            if executor.stop_event.is_set():
                raise ExecutorShutdown()
            found = await in_thread(work, messaging.message_waiting, executor, receive)
    return await in_thread(work, messaging.finish_recv, executor, receive)


async def get_event_async(executor: Executor, workflow_id: str, key: str, timeout_seconds: float) -> Any:
    """``DBOS.get_event`` awaited on the loop (recorded in a workflow body, a plain read
    elsewhere)."""
    with operation_span("get_event"):
        return await _get_event_async(executor, workflow_id, key, timeout_seconds)


async def _get_event_async(executor: Executor, workflow_id: str, key: str, timeout_seconds: float) -> Any:
    read, replayed = messaging.begin_get_event(executor, workflow_id, key)
    if read is None:
        return replayed
    work = executor.async_work
    with executor.hub.watch(read.watch_key) as watch:
        row, wake_at = await in_thread(work, messaging.first_event_look, executor, read, timeout_seconds)
        while row is None and time.time() < wake_at:
            await watch.wait_async(min(wake_at - time.time(), RECHECK_INTERVAL_SEC))
            if executor.stop_event.is_set():
                raise ExecutorShutdown()
            row = await in_thread(work, messaging.event_row, executor, read)
    return await in_thread(work, messaging.finish_get_event, executor, read, row)


async def read_stream_async(
    executor: Executor, workflow_id: str, key: str, *, offset: int = 0, polling_interval_sec: float | None = None,
) -> AsyncIterator[Any]:
    """``DBOS.read_stream`` as an async generator: the stream's values in order from
    ``offset`` until it is closed or its workflow has finished, polling every
    ``polling_interval_sec`` (pgfleet's stream poll interval when None) on the loop. It ends
    when the executor stops, as the sync reader does."""
    interval = READ_POLL_SEC if polling_interval_sec is None else max(0.01, float(polling_interval_sec))
    while True:
        values, ended = await in_thread(executor.async_work, read_batch, executor.db, workflow_id, key, offset, True)
        for value in values:
            yield value
            offset += 1
        if ended:
            return
        if not values:
            try:
                await sleep_unless_stopped(executor, interval)
            except ExecutorShutdown:
                return


async def wait_first_async(executor: Executor, handles: Sequence[H], polling_interval_sec: float) -> H:
    """``DBOS.wait_first`` on the loop: the first of ``handles`` whose workflow finished,
    recorded as ``DBOS.waitFirst`` in a workflow body (a replay returns the same handle)."""
    workflow_ids, by_id = handle_ids(handles)
    refuse_in_transaction()
    interval = polling_interval(polling_interval_sec)
    ctx = active_workflow()
    if ctx is None:
        return by_id[await _first_finished(executor, workflow_ids, interval, lambda: None)]
    function_id, recorded = executor.begin_operation(ctx, "DBOS.waitFirst")
    if recorded is not NOT_RECORDED:
        return by_id[recorded]
    started = now_ms()
    found = await _first_finished(executor, workflow_ids, interval, lambda: executor.check_running(ctx))
    await in_thread(executor.async_work, executor.checkpoint, ctx, function_id, "DBOS.waitFirst",
                    output=serialize(found), started_at_ms=started)
    return by_id[found]


async def _first_finished(executor: Executor, workflow_ids: list[str], interval: float, check: Callable[[], None]) -> str:
    while True:
        check()  # a waiting workflow still stops at its deadline, and when it lost its workflow
        found = await in_thread(executor.async_work, first_finished_once, executor, workflow_ids)
        if found is not None:
            return found
        await sleep_unless_stopped(executor, interval)


async def cancelled_quietly(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it ended, whatever it raised."""
    if not task.done():
        task.cancel()
    try:
        await task
    except BaseException:  # noqa: BLE001 - it is being torn down; its outcome is nobody's
        pass
