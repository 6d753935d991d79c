"""Whether an execution still holds its workflow, checked before every step body and write.

Every write on behalf of a running workflow carries its fencing token (executor id and
ownership epoch). When the database says the token is stale, the workflow stops at once with
:class:`DBOSWorkflowFencedError` (or :class:`DBOSWorkflowCancelledError` if it was cancelled)
and writes nothing more. Before that, a local check (no round trip) refuses an execution whose
executor abandoned its work or whose membership lease ended.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from sysdb import OwnershipLostError

from .context import WorkflowContext
from .errors import DBOSWorkflowCancelledError, DBOSWorkflowFencedError

__all__ = ["Fencing", "FencedWrite", "stale_token_error"]


def stale_token_error(exc: OwnershipLostError) -> DBOSWorkflowCancelledError | DBOSWorkflowFencedError:
    """The user-facing error for a fenced write that matched no row (raised only through
    :meth:`Fencing.fenced_write`, which also marks the execution lost)."""
    if exc.status == "CANCELLED":
        return DBOSWorkflowCancelledError(f"Workflow {exc.workflow_id} is cancelled. Aborting function.")
    return DBOSWorkflowFencedError(exc.workflow_id, str(exc))


class Fencing:
    """The executions of one executor, and whether each still holds its workflow.

    ``lease_valid`` says whether this member's membership lease holds (the heartbeat's local
    clock check); an executor that no cluster membership backs passes one that is always true.
    """

    def __init__(self, lease_valid: Callable[[], bool]) -> None:
        self._lease_valid = lease_valid
        self._generation_lock = threading.Lock()
        # Bumped when this executor must abandon everything it runs (membership lost): every
        # workflow started under an older generation stops at its next write, writing nothing.
        self.generation = 0
        self.abandon_reason = ""

    def abandon_all(self, reason: str) -> None:
        """Stop every running workflow at its next write, without writing (this executor was
        declared dead or cut off, and others are taking its work over)."""
        with self._generation_lock:
            self.generation += 1
            self.abandon_reason = reason

    def lose(self, ctx: WorkflowContext, error: BaseException) -> BaseException:
        """Mark this execution lost with ``error`` (returned, for the caller to raise): every
        later operation of it raises the same error before running anything."""
        if ctx.lost is None:
            ctx.lost = error
        return error

    def check_owned(self, ctx: WorkflowContext) -> None:
        """Raise if this execution lost its workflow; called before every step body, transaction
        and write for a workflow. Local only (no round trip): a fenced or cancelled earlier write,
        an abandoned generation, or an expired membership lease (a paused or cut-off member may
        be declared dead any moment after its lease ends, so it starts nothing more)."""
        if ctx.lost is not None:
            raise ctx.lost.with_traceback(None)
        if ctx.generation != self.generation:
            reason = f"this executor abandoned it ({self.abandon_reason})"
            raise self.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, reason))
        if not self._lease_valid():
            reason = "this executor's membership lease expired (no acknowledged heartbeat in time)"
            raise self.lose(ctx, DBOSWorkflowFencedError(ctx.workflow_id, reason))

    def fenced_write(self, ctx: WorkflowContext | None) -> FencedWrite:
        """Around every write for a running workflow (``with executor.fenced_write(ctx):``):
        refuse before it if the execution is lost, and turn a write that matched no row
        (``OwnershipLostError``) into the workflow's stop, marking the execution lost. The one
        place that does so. With no workflow (a write made outside one, such as a start or a
        send from plain code) there is nothing to fence."""
        return FencedWrite(self, ctx)


class FencedWrite:
    """The context of :meth:`Fencing.fenced_write` (a class, not a generator: five of these
    wrap a 3-step workflow's writes, and a generator context costs several times more)."""

    __slots__ = ("_fencing", "_ctx")

    def __init__(self, fencing: Fencing, ctx: WorkflowContext | None) -> None:
        self._fencing = fencing
        self._ctx = ctx

    def __enter__(self) -> None:
        if self._ctx is not None:
            self._fencing.check_owned(self._ctx)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._ctx is not None and isinstance(exc, OwnershipLostError):
            raise self._fencing.lose(self._ctx, stale_token_error(exc)) from None
