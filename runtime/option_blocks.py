"""The ``with`` blocks that set options for the workflows started inside them, as DBOS names
them (``SetWorkflowID``, ``SetWorkflowTimeout``, ``SetEnqueueOptions``, ``DBOSContextSetAuth``,
``DBOSContextEnsure``, ``PropagateOtelContext``), with DBOS's checks of what they are given.
Each overlays :class:`runtime.context.StartOptions` for the block; a start takes them from
there (:func:`runtime.context.take_start_options`)."""

from __future__ import annotations

from typing import Any, Literal

from .context import _OptionsBlock, current_workflow, peek_start_options
from .errors import DBOSException

__all__ = [
    "SetWorkflowID",
    "SetWorkflowTimeout",
    "SetEnqueueOptions",
    "DuplicationPolicy",
    "DBOSContextSetAuth",
    "DBOSContextEnsure",
    "PropagateOtelContext",
    "assume_role_for_next_starts",
    "check_priority",
    "check_workflow_id",
    "MIN_PRIORITY",
    "MAX_PRIORITY",
]


class SetWorkflowID(_OptionsBlock):
    """``with SetWorkflowID("order-123"):`` gives the next workflow started in the block this id.

    Starting a workflow with an id that exists already does not run it again: it returns the
    recorded result (or waits for the running one).
    """

    def __init__(self, wfid: str) -> None:
        check_workflow_id(wfid)
        super().__init__(workflow_id=wfid)


class SetWorkflowTimeout(_OptionsBlock):
    """``with SetWorkflowTimeout(seconds):`` cancels workflows started in the block that run longer.

    ``None`` (or 0, as in DBOS) removes an inherited timeout. An enqueued workflow's deadline
    starts when it is dequeued; a child inherits its parent's deadline.
    """

    def __init__(self, workflow_timeout_sec: float | None) -> None:
        if workflow_timeout_sec is not None and (
            isinstance(workflow_timeout_sec, bool) or not isinstance(workflow_timeout_sec, (int, float))
        ):
            raise DBOSException(f"SetWorkflowTimeout needs a number of seconds or None, got {workflow_timeout_sec!r}")
        if workflow_timeout_sec is not None and workflow_timeout_sec < 0:
            # DBOS's class (a plain Exception) and words.
            raise Exception(f"Invalid workflow timeout {workflow_timeout_sec}. Timeouts must be positive.")
        # As in DBOS, 0 is no timeout, like None (it also removes an inherited deadline).
        super().__init__(timeout_sec=workflow_timeout_sec or None, timeout_set=True)


# The priorities DBOS accepts: 1 is the highest; a workflow enqueued without one has priority 0.
MIN_PRIORITY, MAX_PRIORITY = 1, 2**31 - 1


def check_workflow_id(workflow_id: Any) -> None:
    """Refuse an id DBOS refuses (empty or only whitespace), with DBOS's class and words; also
    anything that is not a string, which DBOS would fail on later."""
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        raise DBOSException(
            f"Invalid workflow ID {workflow_id!r}: workflow IDs must be non-empty and cannot be only whitespace."
        )


def check_priority(priority: Any, error: type[Exception]) -> None:
    """Raise ``error`` with DBOS's text unless ``priority`` is None or an int DBOS accepts
    (DBOS raises a plain Exception from SetEnqueueOptions, a DBOSException from its client)."""
    if priority is not None and (
        isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY
    ):
        raise error(f"Invalid priority {priority}. Priority must be between {MIN_PRIORITY}~{MAX_PRIORITY}.")


# What an enqueue does when its deduplication id is held: raise DBOSQueueDeduplicatedError
# ("reject", the default) or return a handle on the holder ("return-existing").
DuplicationPolicy = Literal["reject", "return-existing"]


class SetEnqueueOptions(_OptionsBlock):
    """Options for workflows enqueued inside the block (deduplication and its policy, priority,
    partition, delay; the policy is checked at the enqueue, as in DBOS)."""

    def __init__(
        self,
        *,
        deduplication_id: str | None = None,
        priority: int | None = None,
        app_version: str | None = None,
        queue_partition_key: str | None = None,
        delay_seconds: float | None = None,
        duplication_policy: DuplicationPolicy | None = None,
    ) -> None:
        check_priority(priority, Exception)
        if delay_seconds is not None and (
            isinstance(delay_seconds, bool) or not isinstance(delay_seconds, (int, float)) or delay_seconds < 0
        ):
            raise DBOSException(f"delay_seconds must be a non-negative number, got {delay_seconds!r}")
        super().__init__(
            deduplication_id=deduplication_id,
            priority=priority,
            app_version=app_version,
            queue_partition_key=queue_partition_key,
            delay_seconds=delay_seconds,
            duplication_policy=duplication_policy,
        )


class DBOSContextSetAuth(_OptionsBlock):
    """Run the workflows started in the block as ``user`` with ``roles``."""

    def __init__(self, user: str | None, roles: list[str] | None) -> None:
        super().__init__(authenticated_user=user, authenticated_roles=roles)


class DBOSContextEnsure(_OptionsBlock):
    """``with DBOSContextEnsure():`` makes sure a DBOS context exists in the block (one that
    ``DBOS.set_authentication`` can write to); inside a workflow or another block it changes
    nothing."""

    def __init__(self) -> None:
        super().__init__()


def assume_role_for_next_starts(role: str) -> _OptionsBlock:
    """A block in which workflows started outside any workflow record ``role`` as their
    ``assumed_role`` (what ``@DBOS.required_roles`` grants a call made outside a workflow)."""
    return _OptionsBlock(assumed_role=role)


class PropagateOtelContext(_OptionsBlock):
    """``with PropagateOtelContext():`` (DBOS 2.x): workflows started or enqueued in the block
    join the caller's OpenTelemetry trace. The W3C trace context of ``context`` (by default the
    one current at the block's entry) is recorded in each such workflow's row (its attributes,
    under ``dbos.otelContext``), so it holds wherever the workflow runs; nothing is recorded
    when there is no valid context, or when opentelemetry is not installed. As in DBOS it is
    not inherited by the workflows those workflows start."""

    def __init__(self, context: Any = None) -> None:
        self.context = context
        super().__init__()

    def __enter__(self) -> PropagateOtelContext:
        from .tracing import CARRIER_KEY, CARRIER_OWNER_KEY, inject_trace_context

        ctx = current_workflow()
        carrier = inject_trace_context(self.context)
        owner = ctx.workflow_id if ctx is not None else None
        self._changes = {"extra": {**peek_start_options().extra, CARRIER_KEY: carrier, CARRIER_OWNER_KEY: owner}}
        super().__enter__()
        return self
