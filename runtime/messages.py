"""Messages and events between workflows: ``DBOS.send``/``recv`` and ``set_event``/``get_event``.

Inside a workflow each is a checkpointed operation, fenced like a step: a send commits with its
step row, a receive consumes its message in the same transaction as its checkpoint (so a
fenced owner consumes nothing), an event is published with its step row. ``recv`` and
``get_event`` take a second step position for their durable timeout (a ``DBOS.sleep`` row),
so a recovered workflow waits only what is left.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from sysdb import now_ms
from sysdb.errors import NoSuchWorkflowError
from sysdb.messages import NewMessage

from .context import WorkflowContext, current_workflow
from .errors import DBOSException, DBOSNonExistentWorkflowError
from .operations import NOT_RECORDED, ExecutorShutdown, fenced_step, replay_recorded
from .serialization import default_format, deserialize, format_for, serialize
from .steps import durable_wake_time

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["send", "recv", "set_event", "get_event", "NULL_TOPIC"]

# DBOS stores a message sent without a topic under this topic.
NULL_TOPIC = "__null__topic__"
# A waiter re-checks the database at least this often, in case a NOTIFY was lost.
RECHECK_INTERVAL_SEC = 1.0


def _workflow_for(operation: str) -> WorkflowContext | None:
    ctx = current_workflow()
    if ctx is not None and (ctx.in_step or ctx.in_transaction):
        raise DBOSException(f"{operation} cannot be called from inside a step or transaction")
    return ctx


def send(executor: Executor, destination_id: str, message: Any, topic: str | None = None) -> None:
    """Send ``message`` to workflow ``destination_id`` (exactly once from inside a workflow)."""
    ctx = _workflow_for("DBOS.send")
    fmt = format_for(None, ctx.serialization if ctx is not None else None)  # as DBOS: the sending workflow's format
    payload = serialize(message, what="the message", fmt=fmt)
    message_uuid = str(uuid.uuid4())
    parent_step = None
    if ctx is not None:
        function_id, recorded = executor.begin_operation(ctx, "DBOS.send")
        if recorded is not NOT_RECORDED:
            return
        message_uuid = f"{ctx.workflow_id}-{function_id}"  # idempotent if retried
        parent_step = fenced_step(ctx, function_id, "DBOS.send")
    new = NewMessage(
        destination_id=destination_id,
        topic=topic or NULL_TOPIC,
        message=payload,
        serialization=fmt,
        message_uuid=message_uuid,
    )
    try:
        with executor.fenced_write(ctx):
            executor.db.messages.send(new, parent_step)
    except NoSuchWorkflowError:
        raise DBOSNonExistentWorkflowError("`send` destination", destination_id) from None


def recv(executor: Executor, topic: str | None = None, timeout_seconds: float = 60) -> Any:
    """Receive the oldest message sent to this workflow on ``topic``, waiting up to
    ``timeout_seconds`` (durably); ``None`` if none came."""
    ctx = _workflow_for("DBOS.recv")
    if ctx is None:
        raise DBOSException("recv() must be called from within a workflow")
    executor.check_running(ctx)
    function_id = ctx.next_function_id()
    sleep_id = ctx.next_function_id()  # always taken, so positions stay the same on replay
    recorded = ctx.recorded_step(function_id)
    if recorded is not None:
        return replay_recorded(ctx, function_id, "DBOS.recv", recorded)
    topic_key = topic or NULL_TOPIC
    started = now_ms()
    with executor.hub.watch(f"{ctx.workflow_id}::{topic_key}") as watch:
        # As DBOS: the timeout is recorded (DBOS.sleep) even when a message is waiting already.
        wake_at = durable_wake_time(executor, ctx, sleep_id, timeout_seconds)
        while not executor.db.messages.has(ctx.workflow_id, topic_key):
            remaining = wake_at - time.time()
            if remaining <= 0:
                break
            watch.wait(min(remaining, RECHECK_INTERVAL_SEC))
            if executor.stop_event.is_set():
                raise ExecutorShutdown()
    executor.check_running(ctx)
    with executor.fenced_write(ctx):
        message = executor.db.messages.consume(
            ctx.workflow_id, topic_key, fenced_step(ctx, function_id, "DBOS.recv", started_at_ms=started, serialization=default_format())
        )
    if message is None:
        return None
    return deserialize(message.message, message.serialization, what="message")


def set_event(executor: Executor, key: str, value: Any, *, serialization_type: Any = None) -> None:
    """Publish ``value`` under ``key`` for this workflow (readers see the latest value), in the
    format ``serialization_type`` names (by default the workflow's)."""
    ctx = _workflow_for("DBOS.set_event")
    if ctx is None:
        raise DBOSException("set_event() must be called from within a workflow or step")
    function_id, recorded = executor.begin_operation(ctx, "DBOS.setEvent")
    if recorded is not NOT_RECORDED:
        return
    fmt = format_for(serialization_type, ctx.serialization)
    payload = serialize(value, what=f"the value of event {key!r}", fmt=fmt)
    with executor.fenced_write(ctx):
        executor.db.events.set(key, payload, fmt, fenced_step(ctx, function_id, "DBOS.setEvent"))


def get_event(executor: Executor, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
    """The latest value of workflow ``workflow_id``'s event ``key``, waiting up to
    ``timeout_seconds`` for it to be set; ``None`` if it was not."""
    ctx = _workflow_for("DBOS.get_event")
    function_id = sleep_id = None
    if ctx is not None:
        executor.check_running(ctx)
        function_id = ctx.next_function_id()
        sleep_id = ctx.next_function_id()
        recorded = ctx.recorded_step(function_id)
        if recorded is not None:
            return replay_recorded(ctx, function_id, "DBOS.getEvent", recorded)
    started = now_ms()
    with executor.hub.watch(f"{workflow_id}::{key}") as watch:
        row = executor.db.events.get(workflow_id, key)
        if row is None:
            if ctx is not None and sleep_id is not None:
                wake_at = durable_wake_time(executor, ctx, sleep_id, timeout_seconds)
            else:
                wake_at = time.time() + timeout_seconds
            while row is None and time.time() < wake_at:
                watch.wait(min(wake_at - time.time(), RECHECK_INTERVAL_SEC))
                if executor.stop_event.is_set():
                    raise ExecutorShutdown()
                row = executor.db.events.get(workflow_id, key)
    value = deserialize(row.value, row.serialization, what=f"event {key!r}") if row else None
    if ctx is not None and function_id is not None:
        fmt = row.serialization if row else None  # as DBOS: recorded in the event's own format
        executor.checkpoint(ctx, function_id, "DBOS.getEvent", output=serialize(value, fmt=fmt), serialization=fmt, started_at_ms=started)
    return value
