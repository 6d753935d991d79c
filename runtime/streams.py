"""Streams: a workflow publishes values under a key as it runs; readers anywhere follow them.

``DBOS.write_stream`` from a workflow body is a checkpointed operation (written once, skipped on
replay); from inside a step it belongs to the step (at least once, like the step). Every write
is fenced on the workflow's ownership. ``DBOS.close_stream`` ends a stream; ``DBOS.read_stream``
yields its values in order until it is closed or the workflow has finished.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sysdb.streams import StreamValue, StreamWrite

from .context import WorkflowContext, current_workflow
from .errors import DBOSException, DBOSNonExistentWorkflowError
from .operations import NOT_RECORDED, fenced_step
from .serialization import PORTABLE_JSON, deserialize, format_for, serialize
from .status import TERMINAL_STATUSES
from .tracing import operation_span

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["write_stream", "close_stream", "read_stream", "read_batch", "STREAM_CLOSED", "READ_POLL_SEC"]

# The value that marks the end of a stream.
STREAM_CLOSED = "__DBOS_STREAM_CLOSED__"
# How often a reader looks for new values while the stream is open.
READ_POLL_SEC = 0.1
# DBOS's span names for a workflow body's writes.
_SPAN_NAMES = {"DBOS.writeStream": "write_stream", "DBOS.closeStream": "close_stream"}
# DBOS's text for a write outside any workflow.
_OUTSIDE_A_WORKFLOW = {
    "DBOS.writeStream": "write_stream() must be called from within a workflow or step",
    "DBOS.closeStream": "close_stream() must be called from within a workflow",
}


def _write(executor: Executor, key: str, payload: str, serialization: str | None, operation: str) -> None:
    ctx = current_workflow()
    if ctx is None or ctx.in_transaction:
        raise DBOSException(_OUTSIDE_A_WORKFLOW[operation])
    if ctx.step_id is not None and operation == "DBOS.closeStream":
        raise DBOSException(_OUTSIDE_A_WORKFLOW[operation])  # as DBOS: only a workflow body closes its streams
    if ctx.step_id is not None:  # inside a step (ctx.in_step): the write belongs to the step
        _write_step(executor, ctx, ctx.step_id, key, payload, serialization, None)
        return
    with operation_span(_SPAN_NAMES[operation]):
        function_id, recorded = executor.begin_operation(ctx, operation)
        if recorded is not NOT_RECORDED:
            return
        _write_step(executor, ctx, function_id, key, payload, serialization, fenced_step(ctx, function_id, operation))


def _write_step(
    executor: Executor, ctx: WorkflowContext, function_id: int, key: str, payload: str, serialization: str | None, step: Any,
) -> None:
    """Write one stream value at ``function_id`` (with ``step``, its own step row, from a workflow body)."""
    write = StreamWrite(
        workflow_id=ctx.workflow_id,
        executor_id=ctx.executor_id,
        owner_epoch=ctx.owner_epoch,
        function_id=function_id,
        key=key,
        value=payload,
        serialization=serialization,
    )
    with executor.fenced_write(ctx):
        executor.db.streams.write(write, step)


def write_stream(executor: Executor, key: str, value: Any, *, serialization_type: Any = None) -> None:
    """Append ``value`` to this workflow's stream ``key``, in the format ``serialization_type``
    names (by default the workflow's)."""
    ctx = current_workflow()
    fmt = format_for(serialization_type, ctx.serialization if ctx is not None else None)
    _write(executor, key, serialize(value, what=f"a value of stream {key!r}", fmt=fmt), fmt, "DBOS.writeStream")


def close_stream(executor: Executor, key: str) -> None:
    """End this workflow's stream ``key``: readers stop after its last value."""
    # As DBOS writes it (the marker in portable JSON), so DBOS's readers see the end too.
    _write(executor, key, serialize(STREAM_CLOSED, fmt=PORTABLE_JSON), PORTABLE_JSON, "DBOS.closeStream")


def _is_old_end(row: StreamValue) -> bool:
    """Whether a stored stream value is the end marker as older pgfleet wrote it (unserialized)."""
    return row.value == STREAM_CLOSED and row.serialization is None


def read_batch(db: Any, workflow_id: str, key: str, offset: int, must_exist: bool) -> tuple[list[Any], bool]:
    """One look at a stream from ``offset``: the values there, one offset after another, and
    whether the stream ended after them (closed, or its workflow finished with nothing more).
    An unknown workflow raises ``DBOSNonExistentWorkflowError`` when ``must_exist``, else ends
    the stream. The sync and async readers both poll with it."""
    values: list[Any] = []
    for row in db.streams.read(workflow_id, key, offset):
        if row.offset != offset + len(values):  # values come one offset after another, as DBOS reads them
            break
        if _is_old_end(row):
            return values, True
        value = deserialize(row.value, row.serialization, what=f"a value of stream {key!r}")
        if isinstance(value, str) and value == STREAM_CLOSED:  # DBOS's test: a value equal to the marker ends the stream
            return values, True
        values.append(value)
    if values:
        return values, False
    outcome = db.workflows.outcome(workflow_id)
    if outcome is None and must_exist:
        raise DBOSNonExistentWorkflowError("target", workflow_id)
    if outcome is None or outcome.status in TERMINAL_STATUSES:
        # Finished: its last values may have landed after the read above; read once more.
        if any(r.offset == offset for r in db.streams.read(workflow_id, key, offset)):
            return read_batch(db, workflow_id, key, offset, must_exist)
        return values, True
    return values, False


def read_stream(
    source: Any, workflow_id: str, key: str, *, stop: threading.Event, offset: int = 0, must_exist: bool = True,
) -> Iterator[Any]:
    """Yield the values of a workflow's stream in order from ``offset``, waiting for new ones,
    until the stream is closed or the workflow has finished (``source``: an executor or a
    client, anything with ``db``; ``stop`` ends the wait at its shutdown). A workflow that does not exist raises
    ``DBOSNonExistentWorkflowError`` when ``must_exist`` (``DBOS.read_stream``), else ends the
    stream (``DBOSClient.read_stream``), as in DBOS."""
    while True:
        values, ended = read_batch(source.db, workflow_id, key, offset, must_exist)
        for value in values:
            yield value
            offset += 1
        if ended:
            return
        if not values and stop.wait(READ_POLL_SEC):  # the executor (or client) is shutting down
            return
