"""``DBOSClient``'s asyncio API, with DBOS 2.30's names and signatures: connection checks,
enqueues, handles, messages, events, streams and ``wait_first_async`` (a mixin of
:class:`runtime.client.DBOSClient`; the management twins are in :mod:`runtime.client_async_admin`).

Every database call runs in the client's own worker threads (:attr:`DBOSClient.async_work`,
one per connection of its pool), never on the caller's loop; every wait waits on the loop
(``asyncio.sleep`` between polls: a client has no notification listener), so a thousand
tasks awaiting results through one client hold no thread while they wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sysdb.errors import PoolClosedError

from . import logs
from .aio import in_thread
from .client_messaging import _client_stopped as client_stopped
from .errors import DBOSException
from .handles import WorkflowHandleAsync
from .messages import SendMessage
from .operations import ExecutorShutdown
from .results import await_outcome_async
from .serialization import deserialize
from .serializers import WorkflowSerializationFormat
from .streams import READ_POLL_SEC, read_batch
from .waiting import DEFAULT_POLLING_INTERVAL_SEC, handle_ids

if TYPE_CHECKING:
    from sysdb import SystemDatabase

    from .client import DBOSClient, EnqueueOptions

__all__ = ["ClientAsyncAPI", "off_loop", "warn_if_blocking_the_loop"]

T = TypeVar("T")
# Waiting for an event: poll its row, backing off from 10 ms to this interval (as the sync client).
EVENT_POLL_MAX_INTERVAL_SEC = 0.5
_NO_EVENT: Any = object()


def warn_if_blocking_the_loop(method: str) -> None:
    """DBOS's warning when a sync ``DBOSClient`` method that waits on the database is called
    on a running event loop (the ``_async`` twin runs it in a worker thread: no warning)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    logs.logger.warning(
        f"Synchronous 'DBOSClient.{method}' was called from a running asyncio event loop. This blocks the "
        f"loop on a database round-trip. Use 'DBOSClient.{method}_async' instead."
    )


def _destroyed() -> DBOSException:
    return DBOSException("this DBOSClient was destroyed; create a new one")


async def off_loop(client: DBOSClient, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in ``client``'s worker threads. A client destroyed before or
    during the call raises DBOSException (not the closed pool's error)."""
    if client._stop.is_set():
        raise _destroyed()
    try:
        return await in_thread(client.async_work, fn, *args, **kwargs)
    except (RuntimeError, PoolClosedError) as exc:  # the thread pool or the connection pool closed
        if client._stop.is_set():
            raise _destroyed() from exc
        raise


def _read_event(db: SystemDatabase, workflow_id: str, key: str) -> Any:
    row = db.events.get(workflow_id, key)
    return _NO_EVENT if row is None else deserialize(row.value, row.serialization, what=f"event {key!r}")


class ClientAsyncAPI:
    """The ``_async`` twins of ``DBOSClient``'s enqueues, waits, messages and streams."""

    def _client(self) -> DBOSClient:
        return cast("DBOSClient", self)

    async def _sysdb_async(self) -> SystemDatabase:
        """The system database, connecting in a worker thread if the client is lazy."""
        client = self._client()
        return client._opened if client._opened is not None else await off_loop(client, client._connect)

    async def check_connection_async(self) -> None:
        """``check_connection`` for asyncio code."""
        await off_loop(self._client(), self._client().check_connection)

    async def enqueue_async(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandleAsync[Any]:
        """``enqueue`` for asyncio code; the handle's ``await get_result()`` waits on the loop."""
        return WorkflowHandleAsync.of(await off_loop(self._client(), self._client().enqueue, options, *args, **kwargs))

    async def retrieve_workflow_async(self, workflow_id: str, *, existing_workflow: bool = True) -> WorkflowHandleAsync[Any]:
        """``retrieve_workflow`` for asyncio code (raises if it does not exist and ``existing_workflow``)."""
        client = self._client()
        handle = await off_loop(client, client.retrieve_workflow, workflow_id, existing_workflow=existing_workflow)
        return WorkflowHandleAsync.of(handle)

    async def wait_result_async(self, workflow_id: str, timeout_sec: float | None = None) -> Any:
        """Wait on the loop until the workflow finishes; its result, or its error raised. The
        client's handles await this (reads in the client's threads, ``asyncio.sleep`` between)."""
        client = self._client()
        db = await self._sysdb_async()
        try:
            return await await_outcome_async(db, workflow_id, timeout_sec, client._stop, None, client.async_work)
        except ExecutorShutdown:
            raise client_stopped() from None
        except (RuntimeError, PoolClosedError) as exc:
            if client._stop.is_set():
                raise client_stopped() from exc
            raise

    async def wait_first_async(
        self, handles: list[WorkflowHandleAsync[Any]], *, polling_interval_sec: float = DEFAULT_POLLING_INTERVAL_SEC
    ) -> WorkflowHandleAsync[Any]:
        """Wait, on the loop, until one of the handles' workflows finishes; that handle."""
        workflow_ids, by_id = handle_ids(handles)
        client = self._client()
        db = await self._sysdb_async()
        interval = max(0.01, float(polling_interval_sec))
        while True:
            found = await off_loop(client, db.waits.first_finished, workflow_ids)
            if found is not None:
                return by_id[found]
            await _sleep_unless_destroyed(client, interval)

    async def send_async(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send`` for asyncio code."""
        client = self._client()
        await off_loop(
            client, client.send, destination_id, message, topic, idempotency_key,
            serialization_type=serialization_type, send_to_forks=send_to_forks,
        )

    async def send_bulk_async(
        self,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send_bulk`` for asyncio code: the messages in one transaction."""
        client = self._client()
        await off_loop(client, client.send_bulk, messages, serialization_type=serialization_type, send_to_forks=send_to_forks)

    async def get_event_async(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of a workflow's event, waiting on the loop up to ``timeout_seconds``
        for it (None if it is not set by then)."""
        client = self._client()
        db = await self._sysdb_async()
        loop_time = asyncio.get_running_loop().time
        deadline = loop_time() + timeout_seconds
        interval = 0.01
        while True:
            value = await off_loop(client, _read_event, db, workflow_id, key)
            if value is not _NO_EVENT:
                return value
            remaining = deadline - loop_time()
            if remaining <= 0:
                return None
            await _sleep_unless_destroyed(client, min(interval, remaining))
            interval = min(interval * 2, EVENT_POLL_MAX_INTERVAL_SEC)

    async def read_stream_async(self, workflow_id: str, key: str, *, offset: int = 0) -> AsyncGenerator[Any, None]:
        """Yield a workflow's stream values in order from ``offset`` until the stream is closed
        or the workflow ends (nothing for a workflow that does not exist), polling on the loop.
        Ends when the client is destroyed, as ``read_stream`` does."""
        client = self._client()
        db = await self._sysdb_async()
        while not client._stop.is_set():
            try:
                values, ended = await off_loop(client, read_batch, db, workflow_id, key, offset, False)
            except DBOSException:
                if client._stop.is_set():
                    return
                raise
            for value in values:
                yield value
                offset += 1
            if ended:
                return
            if not values:
                await asyncio.sleep(READ_POLL_SEC)



async def _sleep_unless_destroyed(client: DBOSClient, seconds: float) -> None:
    """Sleep on the loop between polls; a client destroyed meanwhile ends the wait."""
    await asyncio.sleep(seconds)
    if client._stop.is_set():
        raise client_stopped()
