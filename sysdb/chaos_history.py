"""The history a chaos run checks (``pgfleet chaos``): what changed hands, what was written, what
ran, read from the system database once the run is over.

``install()`` adds the run's instrumentation to the (scratch) system database of a chaos run, in
a schema of its own (``pgfleet_chaos``), never part of pgfleet's migrations: deferred constraint
triggers that log, as each transaction commits, every change of a workflow row's ownership and
every insert of a step output, event or stream value, each with the writing session's
``application_name`` (pgfleet names an executor's sessions ``pgfleet <executor_id> <pid>``) and
the workflow row's owner as the trigger reads it at commit. The step-body starts come from
pgfleet's own attempt ledger (``dbos.pgfleet_step_attempts``), the takeovers and leader actions
from pgfleet's own logs.

Every time is the database's clock, as unix seconds (float).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "OwnershipChange",
    "WriteRecord",
    "StepStart",
    "TakeoverRecord",
    "LeaderAction",
    "FinalStatus",
    "MemberRecord",
    "QueueLimits",
    "EventValue",
    "ChaosHistoryRows",
]


@dataclass(frozen=True)
class OwnershipChange:
    """A committed change of a ``dbos.workflow_status`` row's ``(status, executor_id,
    owner_epoch)`` (its insert included), logged at commit."""

    seq: int
    workflow_uuid: str
    status: str
    executor_id: str | None
    owner_epoch: int | None
    queue_name: str | None
    queue_partition_key: str | None
    rate_limited: bool
    started_at_epoch_ms: int | None
    writer: str  # the writing session's application_name
    at: float


@dataclass(frozen=True)
class WriteRecord:
    """A committed write made on a workflow's behalf: a step output (``kind`` "output", with its
    ``function_id``), an event ("event"), a stream value ("stream") or the finish of its row
    ("finish"), with the workflow row's owner and status as read at that commit."""

    seq: int
    kind: str
    workflow_uuid: str
    function_id: int | None
    function_name: str | None
    writer: str
    row_status: str | None
    row_executor_id: str | None
    row_owner_epoch: int | None
    at: float
    # For an "output" that starts or enqueues a child workflow: the child's id (the row's
    # child_workflow_id), so the checker can tell a child that never got a row.
    child_workflow_id: str | None = None


@dataclass(frozen=True)
class StepStart:
    """A start of a step body, from the attempt ledger."""

    id: int
    workflow_uuid: str
    function_id: int
    function_name: str
    executor_id: str
    owner_epoch: int
    pid: int
    attempt: int
    at: float


@dataclass(frozen=True)
class TakeoverRecord:
    """A workflow moved off a dead member (``dbos.pgfleet_takeovers``)."""

    workflow_uuid: str
    from_executor_id: str | None
    from_epoch: int | None
    to_executor_id: str | None
    to_epoch: int | None
    requeued_to: str | None
    by_executor_id: str
    leader_term: int | None
    at: float


@dataclass(frozen=True)
class LeaderAction:
    """One action of a leader (``dbos.pgfleet_leader_log``)."""

    id: int
    term: int
    executor_id: str
    action: str
    at: float


@dataclass(frozen=True)
class FinalStatus:
    """A workflow row as the run left it. ``output`` and ``error`` are as stored (serialized)."""

    workflow_uuid: str
    name: str
    status: str
    queue_name: str | None
    executor_id: str | None
    output: str | None
    error: str | None
    serialization: str | None
    created_at: float
    updated_at: float
    # The workflow that started or enqueued this one (a child's parent), so the checker can
    # follow an app's workflow to its descendants.
    parent_workflow_id: str | None = None


@dataclass(frozen=True)
class MemberRecord:
    """A member of the fleet as its row stands (``dbos.pgfleet_executors``)."""

    executor_id: str
    pid: int | None
    hostname: str | None
    status: str
    epoch: int | None
    last_heartbeat: float | None


@dataclass(frozen=True)
class QueueLimits:
    """A queue's limits as the members declared them."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit_max: int | None
    rate_limit_period_sec: float | None
    partition_queue: bool


@dataclass(frozen=True)
class EventValue:
    """A workflow event's final value, as stored (serialized)."""

    workflow_uuid: str
    key: str
    value: str | None
    serialization: str | None


@dataclass(frozen=True)
class ChaosHistoryRows:
    """Everything a chaos run's checker reads, loaded at once after the run."""

    ownership: list[OwnershipChange]
    writes: list[WriteRecord]
    starts: list[StepStart]
    takeovers: list[TakeoverRecord]
    leader_actions: list[LeaderAction]
    statuses: list[FinalStatus]
    members: list[MemberRecord]
    queues: list[QueueLimits]
    events: list[EventValue]
