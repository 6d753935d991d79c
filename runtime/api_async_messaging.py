"""The one-shot ``_async`` twins of ``DBOS``'s messages, events and streams (a mixin of
:class:`runtime.dbos.DBOS`): ``send_async``, ``send_bulk_async``, ``set_event_async``,
``get_all_events_async``, ``write_stream_async``, ``close_stream_async``.

Each runs its sync method in the executor's worker threads; inside a workflow body it first
takes its one step position on the loop (DBOS's twins snapshot their step context before they
leave the loop), so gathered twins number their steps in call order. From a step they take
none, as their sync methods take none there. The waiting twins (``recv_async``,
``get_event_async``, ``read_stream_async``) wait on the loop and live elsewhere.
"""

from __future__ import annotations

from typing import Any

from .api_async_admin import facade, off_loop
from .messages import SendMessage
from .serializers import WorkflowSerializationFormat

__all__ = ["AsyncMessagingAPI"]


class AsyncMessagingAPI:
    """Messages, events and streams for asyncio code."""

    @classmethod
    async def send_async(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send`` for asyncio code (from a workflow body, sent exactly once)."""
        await off_loop(
            "DBOS.send_async", 1, facade().send, destination_id, message, topic,
            idempotency_key=idempotency_key, serialization_type=serialization_type, send_to_forks=send_to_forks,
        )

    @classmethod
    async def send_bulk_async(
        cls,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send_bulk`` for asyncio code (one transaction, one ``DBOS.send_bulk`` step)."""
        await off_loop(
            "DBOS.send_bulk_async", 1, facade().send_bulk, messages,
            serialization_type=serialization_type, send_to_forks=send_to_forks,
        )

    @classmethod
    async def set_event_async(
        cls, key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT
    ) -> None:
        """``set_event`` for asyncio code (inside a workflow or one of its steps)."""
        await off_loop("DBOS.set_event_async", 1, facade().set_event, key, value, serialization_type=serialization_type)

    @classmethod
    async def get_all_events_async(cls, workflow_id: str) -> dict[str, Any]:
        """``get_all_events`` for asyncio code (a recorded ``DBOS.get_events`` inside a workflow)."""
        events: dict[str, Any] = await off_loop("DBOS.get_all_events_async", 1, facade().get_all_events, workflow_id)
        return events

    @classmethod
    async def write_stream_async(
        cls, key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT
    ) -> None:
        """``write_stream`` for asyncio code (inside a workflow or one of its steps)."""
        await off_loop("DBOS.write_stream_async", 1, facade().write_stream, key, value, serialization_type=serialization_type)

    @classmethod
    async def close_stream_async(cls, key: str) -> None:
        """``close_stream`` for asyncio code (inside a workflow)."""
        await off_loop("DBOS.close_stream_async", 1, facade().close_stream, key)
