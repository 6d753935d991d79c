"""The values a chaos run passes between its parts: the faults it injected, the invariants it
checked, and the result every output (the table, ``--json``, ``--report``) is made from.

Times are unix seconds on the database's clock: the runner converts its own fault times with the
offset it measured against the server (``FaultRecord.at``), so faults and history line up on
one axis even when the database runs on another host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAULT_KINDS",
    "FaultRecord",
    "ExpectedOutcome",
    "Violation",
    "InvariantResult",
    "LatencyStats",
    "ThroughputPoint",
    "Lane",
    "ChaosResult",
]

# The fault kinds of `--faults`, in the order the help lists them.
FAULT_KINDS = ("kill-node", "kill-worker", "pause-node", "pause-worker", "partition", "restart-db", "terminate-backends")


@dataclass
class FaultRecord:
    """One injected fault: what, when (``at``; ``ended_at`` for a pause or a partition when it was
    lifted, or a restart when the server was back), where, and which processes it hit."""

    kind: str
    at: float
    node: str | None = None
    target: str | None = None  # the node, or the executor of a worker fault
    pids: list[int] = field(default_factory=list)
    executors: list[str] = field(default_factory=list)
    ended_at: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExpectedOutcome:
    """What a workload says about one workflow it started. ``exact`` (the built-in workload): it
    must end SUCCESS with ``output`` (and ``event_key`` set to ``event_value``). Otherwise (an
    app's workload, which cannot say): it and its children must end, and not in ERROR from an
    infrastructure cause (a lost connection, a fenced write, a pool timeout)."""

    workflow_id: str
    exact: bool = False
    output: Any = None
    event_key: str | None = None
    event_value: Any = None


@dataclass
class Violation:
    """One breach of an invariant, with the rows that show it."""

    message: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class InvariantResult:
    """One row of the invariant table: ``checked`` says how much was looked at (a check that
    looked at nothing proves nothing, and the table says so)."""

    name: str  # a stable key, e.g. "no-rerun-after-record"
    title: str  # the sentence an operator reads, e.g. "no completed step ran again"
    checked: int
    violations: list[Violation] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class LatencyStats:
    """Takeover latency for one fault kind: from the fault to the first step body of each
    workflow it hit on its new owner (seconds)."""

    kind: str
    count: int
    p50: float | None
    p99: float | None
    max: float | None


@dataclass
class ThroughputPoint:
    """Workflows finished in the bucket that starts at ``at`` (``seconds`` long)."""

    at: float
    seconds: float
    finished: int


@dataclass
class Lane:
    """One executor process in the timeline: alive from ``start`` to ``end`` (None: to the end)."""

    node: str
    executor_id: str
    pid: int
    start: float
    end: float | None


@dataclass
class ChaosResult:
    """Everything one run found; the table, the JSON and the HTML report are views of it."""

    command: str  # the exact command that reproduces the run
    seed: int
    app: str
    workload: str
    nodes: int
    workers: int
    seconds: float
    started_at: float
    ended_at: float
    faults: list[FaultRecord]
    invariants: list[InvariantResult]
    latencies: list[LatencyStats]
    throughput: list[ThroughputPoint]
    lanes: list[Lane]
    takeovers: list[dict[str, Any]]  # workflow, from/to executor, at: the report's arrows
    workflows_by_status: dict[str, int]
    notes: list[str] = field(default_factory=list)  # what the run could not do, and why

    @property
    def passed(self) -> bool:
        return all(i.ok for i in self.invariants)
