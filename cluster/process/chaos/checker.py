"""The checker of a chaos run: every invariant over the run's history (``sysdb.chaos_history``),
its faults and what its workload expects, as pure functions (no database, no processes), so
tests can plant each kind of violation in a hand-made history and see it reported.

The invariants, each one row of the table (see ops/RUNBOOK.md, "Failover testing"):

- ``outcomes`` (invariants_outcomes.py): every expected workflow reached its outcome;
- ``no-rerun-after-record``, ``no-start-after-takeover``, ``outputs-recorded-once``
  (invariants_steps.py): no completed step ran again, no body started by a process after its
  workflow moved, no output recorded twice;
- ``no-write-by-fenced-owner`` (invariants_writes.py): every write made by the owning process;
- ``queue-limits``, ``rate-limits`` (invariants_queues.py): the limits the claims enforce held;
- ``one-leader`` (invariants_leaders.py): one leader per term, terms in order.

The measures (latency, throughput, lanes, takeover arrows) are in measures.py.
"""

from __future__ import annotations

from sysdb.chaos_history import ChaosHistoryRows

from .invariants_leaders import check_one_leader
from .invariants_outcomes import check_outcomes
from .invariants_queues import check_queue_limits, check_rate_limits
from .invariants_steps import check_no_rerun_after_record, check_no_start_after_takeover, check_outputs_recorded_once
from .invariants_writes import check_no_write_by_fenced_owner
from .measures import lanes, takeover_arrows, takeover_latencies, throughput, workflows_by_status
from .model import ExpectedOutcome, FaultRecord, InvariantResult

__all__ = [
    "INVARIANTS",
    "check_all",
    "takeover_latencies",
    "throughput",
    "lanes",
    "takeover_arrows",
    "workflows_by_status",
]

# The invariants' names, in the order of the table.
INVARIANTS = (
    "outcomes",
    "no-rerun-after-record",
    "no-start-after-takeover",
    "no-write-by-fenced-owner",
    "outputs-recorded-once",
    "queue-limits",
    "rate-limits",
    "one-leader",
)


def check_all(history: ChaosHistoryRows, faults: list[FaultRecord], expected: list[ExpectedOutcome]) -> list[InvariantResult]:
    """Every invariant over the run's history, one result each, in :data:`INVARIANTS` order.
    No invariant depends on ``faults`` today (a correct fleet holds each under any faults); the
    runner passes them so that a check may come to."""
    del faults
    return [
        check_outcomes(history, expected),
        check_no_rerun_after_record(history),
        check_no_start_after_takeover(history),
        check_no_write_by_fenced_owner(history),
        check_outputs_recorded_once(history),
        check_queue_limits(history),
        check_rate_limits(history),
        check_one_leader(history),
    ]
