"""Messages and events between workflows: ``DBOS.send``/``send_bulk``/``recv`` and
``set_event``/``get_event``/``get_all_events``.

Inside a workflow each is a checkpointed operation, fenced like a step: a send commits with its
step row (one row for a whole ``send_bulk``), a receive consumes its message in the same
transaction as its checkpoint (so a fenced owner consumes nothing), an event is published with
its step row. ``recv`` and ``get_event`` take a second step position for their durable timeout
(a ``DBOS.sleep`` row), so a recovered workflow waits only what is left. From inside a step, as
in DBOS, a send and a ``set_event`` record nothing of their own (they belong to the step), but
they still commit only while the workflow's owner holds it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sysdb import now_ms
from sysdb.errors import NoSuchWorkflowError
from sysdb.events import EventValue
from sysdb.messages import NewMessage, WorkflowOwner

from .context import WorkflowContext, current_workflow
from .errors import DBOSException, DBOSNonExistentWorkflowError
from .operations import NOT_RECORDED, ExecutorShutdown, fenced_step, replay_recorded
from .serialization import default_format, deserialize, format_for, serialize
from .steps import durable_wake_time
from .tracing import operation_span

if TYPE_CHECKING:
    from .executor import Executor

__all__ = [
    "SendMessage", "send_bulk", "new_messages", "recv", "set_event", "get_event", "get_all_events", "NULL_TOPIC",
    "Receive", "begin_recv", "arm_recv", "message_waiting", "finish_recv",
    "EventRead", "begin_get_event", "first_event_look", "event_row", "finish_get_event",
]

# DBOS stores a message sent without a topic under this topic.
NULL_TOPIC = "__null__topic__"
# A waiter re-checks the database at least this often, in case a NOTIFY was lost.
RECHECK_INTERVAL_SEC = 1.0


@dataclass
class SendMessage:
    """A single message to send as part of a bulk send operation."""

    destination_id: str
    message: Any
    topic: str | None = None
    idempotency_key: str | None = None


def _owner(ctx: WorkflowContext) -> WorkflowOwner:
    return WorkflowOwner(ctx.workflow_id, ctx.executor_id, ctx.owner_epoch)


def message_format(serialization_type: Any, ctx: WorkflowContext | None) -> str:
    """The stored format of a message: DBOS's ``serialization_type`` (``PORTABLE``, ``NATIVE``,
    or by default the sending workflow's own format, else the process's default)."""
    return format_for(serialization_type, ctx.serialization if ctx is not None else None)


def new_messages(
    messages: Sequence[SendMessage], fmt: str, send_to_forks: bool, uuid_base: str | None = None
) -> list[NewMessage]:
    """The rows of a send: each message serialized in ``fmt``, under an id that makes a retry
    deliver it once (``<idempotency key>::<destination>`` as in DBOS; without a key, the
    sending step's position ``uuid_base`` inside a workflow, else a fresh uuid)."""
    for m in messages:
        if not isinstance(m, SendMessage):
            raise DBOSException(f"send_bulk takes SendMessage objects, got {type(m).__name__}")
    keys = [m.idempotency_key for m in messages if m.idempotency_key]
    if len(keys) != len(set(keys)):
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        raise DBOSException(f"send_bulk received duplicate idempotency keys: {', '.join(duplicates)}")
    rows = []
    for i, m in enumerate(messages):
        payload = serialize(m.message, what="the message", fmt=fmt)
        if m.idempotency_key:
            key, message_uuid = m.idempotency_key, f"{m.idempotency_key}::{m.destination_id}"
        else:
            key = message_uuid = str(uuid.uuid4()) if uuid_base is None else (uuid_base if i == 0 else f"{uuid_base}-{i}")
        rows.append(NewMessage(
            destination_id=m.destination_id,
            topic=m.topic if m.topic is not None else NULL_TOPIC,
            message=payload,
            serialization=fmt,
            message_uuid=message_uuid,
            fork_key=key if send_to_forks else None,
        ))
    return rows


def send_bulk(
    executor: Executor, messages: Sequence[SendMessage], *, function_name: str, serialization_type: Any = None,
    send_to_forks: bool = False,
) -> None:
    """Send messages in one transaction: from a workflow body exactly once (one step row,
    ``function_name``), from a step or plain code as they come (at least once with the step)."""
    ctx = current_workflow()
    fmt = message_format(serialization_type, ctx)
    if ctx is None or ctx.in_step or ctx.in_transaction:
        owner = None if ctx is None else _owner(ctx)
        rows = new_messages(messages, fmt, send_to_forks)
        _deliver(executor, ctx, rows, None, owner)
        return
    new_messages(messages, fmt, send_to_forks)  # bad input fails before the position is taken
    with operation_span(function_name.removeprefix("DBOS.")):  # DBOS's "send" / "send_bulk"
        function_id, recorded = executor.begin_operation(ctx, function_name)
        if recorded is not NOT_RECORDED:
            return
        rows = new_messages(messages, fmt, send_to_forks, uuid_base=f"{ctx.workflow_id}-{function_id}")
        _deliver(executor, ctx, rows, fenced_step(ctx, function_id, function_name), None)


def _deliver(executor: Executor, ctx: WorkflowContext | None, rows: list[NewMessage], step: Any, owner: WorkflowOwner | None) -> None:
    try:
        with executor.fenced_write(ctx):
            executor.db.messages.send(rows, step, owner=owner)
    except NoSuchWorkflowError as exc:
        raise DBOSNonExistentWorkflowError("`send` destination", exc.workflow_id) from None


@dataclass
class Receive:
    """One ``recv`` being run for the first time: its two positions and what it waits on."""

    ctx: WorkflowContext
    function_id: int
    sleep_id: int
    topic_key: str
    started_at_ms: int

    @property
    def key(self) -> str:
        """The notification key that wakes it."""
        return f"{self.ctx.workflow_id}::{self.topic_key}"


def begin_recv(executor: Executor, topic: str | None) -> tuple[Receive | None, Any]:
    """Take ``recv``'s two positions (both always, so positions stay the same on replay):
    ``(None, recorded message)`` on replay, else ``(receive, None)``. Local: no database."""
    ctx = current_workflow()
    if ctx is None or ctx.in_step or ctx.in_transaction:
        raise DBOSException("recv() must be called from within a workflow")
    executor.check_running(ctx)
    function_id = ctx.next_function_id()
    sleep_id = ctx.next_function_id()
    recorded = ctx.recorded_step(function_id)
    if recorded is not None:
        return None, replay_recorded(ctx, function_id, "DBOS.recv", recorded)
    return Receive(ctx, function_id, sleep_id, topic or NULL_TOPIC, now_ms()), None


def arm_recv(executor: Executor, receive: Receive, timeout_seconds: float) -> tuple[float, bool]:
    """Record the timeout (as DBOS, even when a message is waiting already) and look once:
    ``(wake-up time, whether a message is there)``."""
    wake_at = durable_wake_time(executor, receive.ctx, receive.sleep_id, timeout_seconds)
    return wake_at, message_waiting(executor, receive)


def message_waiting(executor: Executor, receive: Receive) -> bool:
    """One look at the database: is a message there for this receive?"""
    return executor.db.messages.has(receive.ctx.workflow_id, receive.topic_key)


def finish_recv(executor: Executor, receive: Receive) -> Any:
    """Consume the oldest message (or none) in the same fenced transaction as the checkpoint."""
    ctx = receive.ctx
    executor.check_running(ctx)
    with executor.fenced_write(ctx):
        message = executor.db.messages.consume(
            ctx.workflow_id,
            receive.topic_key,
            # As DBOS: a receive that found nothing records the serialized None.
            fenced_step(ctx, receive.function_id, "DBOS.recv", started_at_ms=receive.started_at_ms,
                        output=serialize(None), serialization=default_format()),
        )
    if message is None:
        return None
    return deserialize(message.message, message.serialization, what="message")


def recv(executor: Executor, topic: str | None = None, timeout_seconds: float = 60) -> Any:
    """Receive the oldest message sent to this workflow on ``topic``, waiting up to
    ``timeout_seconds`` (durably); ``None`` if none came."""
    with operation_span("recv"):
        return _recv(executor, topic, timeout_seconds)


def _recv(executor: Executor, topic: str | None, timeout_seconds: float) -> Any:
    receive, replayed = begin_recv(executor, topic)
    if receive is None:
        return replayed
    with executor.hub.watch(receive.key) as watch:
        wake_at, found = arm_recv(executor, receive, timeout_seconds)
        while not found:
            remaining = wake_at - time.time()
            if remaining <= 0:
                break
            watch.wait(min(remaining, RECHECK_INTERVAL_SEC))
            if executor.stop_event.is_set():
                raise ExecutorShutdown()
            found = message_waiting(executor, receive)
    return finish_recv(executor, receive)


def set_event(executor: Executor, key: str, value: Any, *, serialization_type: Any = None) -> None:
    """Publish ``value`` under ``key`` for this workflow (readers see the latest value), in the
    format ``serialization_type`` names (by default the workflow's): from the workflow body a
    checkpointed operation, from one of its steps part of the step."""
    ctx = current_workflow()
    if ctx is None or ctx.in_transaction:
        raise DBOSException("set_event() must be called from within a workflow or step")
    fmt = format_for(serialization_type, ctx.serialization)
    if ctx.step_id is not None:  # inside a step: no step row of its own, as in DBOS
        payload = serialize(value, what=f"the value of event {key!r}", fmt=fmt)
        with executor.fenced_write(ctx):
            executor.db.events.set_from_step(_owner(ctx), ctx.step_id, key, payload, fmt)
        return
    with operation_span("set_event"):
        function_id, recorded = executor.begin_operation(ctx, "DBOS.setEvent")
        if recorded is not NOT_RECORDED:
            return
        payload = serialize(value, what=f"the value of event {key!r}", fmt=fmt)
        with executor.fenced_write(ctx):
            executor.db.events.set(key, payload, fmt, fenced_step(ctx, function_id, "DBOS.setEvent"))


@dataclass
class EventRead:
    """One ``get_event`` being run: its positions (in a workflow body) and what it reads."""

    ctx: WorkflowContext | None  # the calling workflow body, if any (then it is recorded)
    function_id: int | None
    sleep_id: int | None
    workflow_id: str
    key: str
    started_at_ms: int

    @property
    def watch_key(self) -> str:
        return f"{self.workflow_id}::{self.key}"


def begin_get_event(executor: Executor, workflow_id: str, key: str) -> tuple[EventRead | None, Any]:
    """Take ``get_event``'s two positions in a workflow body: ``(None, recorded value)`` on
    replay, else ``(read, None)``. From a step, a transaction or plain code a read that records
    nothing, as in DBOS. Local: no database."""
    ctx = current_workflow()
    if ctx is not None and (ctx.in_step or ctx.in_transaction):
        ctx = None
    function_id = sleep_id = None
    if ctx is not None:
        executor.check_running(ctx)
        function_id = ctx.next_function_id()
        sleep_id = ctx.next_function_id()
        recorded = ctx.recorded_step(function_id)
        if recorded is not None:
            return None, replay_recorded(ctx, function_id, "DBOS.getEvent", recorded)
    return EventRead(ctx, function_id, sleep_id, workflow_id, key, now_ms()), None


def first_event_look(executor: Executor, read: EventRead, timeout_seconds: float) -> tuple[EventValue | None, float]:
    """Read the event once, and the wake-up time: in a workflow body it is recorded (so a
    recovered workflow waits only what is left) even when the event is set already, as DBOS
    2.30 records it."""
    row = executor.db.events.get(read.workflow_id, read.key)
    if read.ctx is not None and read.sleep_id is not None:
        return row, durable_wake_time(executor, read.ctx, read.sleep_id, timeout_seconds)
    return row, time.time() + timeout_seconds


def event_row(executor: Executor, read: EventRead) -> EventValue | None:
    """One look at the database for the event."""
    return executor.db.events.get(read.workflow_id, read.key)


def finish_get_event(executor: Executor, read: EventRead, row: EventValue | None) -> Any:
    """The value (None when unset), recorded in a workflow body."""
    value = deserialize(row.value, row.serialization, what=f"event {read.key!r}") if row else None
    if read.ctx is not None and read.function_id is not None:
        fmt = row.serialization if row else None  # as DBOS: recorded in the event's own format
        executor.checkpoint(read.ctx, read.function_id, "DBOS.getEvent", output=serialize(value, fmt=fmt),
                            serialization=fmt, started_at_ms=read.started_at_ms)
    return value


def get_event(executor: Executor, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
    """The latest value of workflow ``workflow_id``'s event ``key``, waiting up to
    ``timeout_seconds`` for it to be set; ``None`` if it was not. Checkpointed in a workflow
    body; from a step or a transaction a plain read, as in DBOS."""
    with operation_span("get_event"):
        return _get_event(executor, workflow_id, key, timeout_seconds)


def _get_event(executor: Executor, workflow_id: str, key: str, timeout_seconds: float) -> Any:
    read, replayed = begin_get_event(executor, workflow_id, key)
    if read is None:
        return replayed
    with executor.hub.watch(read.watch_key) as watch:
        row, wake_at = first_event_look(executor, read, timeout_seconds)
        while row is None and time.time() < wake_at:
            watch.wait(min(wake_at - time.time(), RECHECK_INTERVAL_SEC))
            if executor.stop_event.is_set():
                raise ExecutorShutdown()
            row = event_row(executor, read)
    return finish_get_event(executor, read, row)


def read_all_events(executor: Any, workflow_id: str) -> dict[str, Any]:
    """Every event of a workflow with its latest value ({} for none, or no such workflow)."""
    return {
        key: deserialize(event.value, event.serialization, what=f"event {key!r}")
        for key, event in executor.db.events.all(workflow_id).items()
    }


def get_all_events(executor: Executor, workflow_id: str) -> dict[str, Any]:
    """``DBOS.get_all_events``: recorded (``DBOS.get_events``) in a workflow body."""
    ctx = current_workflow()
    if ctx is not None and ctx.in_transaction:
        raise Exception("Invalid call to `DBOS.get_events` inside a transaction")  # DBOS raises a bare Exception
    return executor.recorded_call("DBOS.get_events", lambda: read_all_events(executor, workflow_id))
