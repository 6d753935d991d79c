"""From a finished run's history to its :class:`ChaosResult`: the checker's invariants, the
harness's own row (did the faults land and hit work?), latencies, throughput and the timeline."""

from __future__ import annotations

from collections import Counter

from sysdb.chaos_history import ChaosHistoryRows

from .checker import check_all, lanes, takeover_arrows, takeover_latencies, throughput, workflows_by_status
from .model import ChaosResult, ExpectedOutcome, FaultRecord, InvariantResult, LatencyStats, Violation
from .options import BUILTIN_APP, ChaosOptions

__all__ = ["build_result", "harness_result"]

# Faults that hit processes: a run of them that hit no workflow in flight tested nothing.
MOVING_FAULTS = ("kill-node", "kill-worker", "pause-node", "pause-worker", "partition")


def harness_result(kinds: list[str], faults: list[FaultRecord], latencies: list[LatencyStats],
                   expected: list[ExpectedOutcome], failed_waves: dict[int, str]) -> InvariantResult:  # fmt: skip
    """The run's check of itself: a run whose faults did not land, hit no workflow in flight or
    started no work proves nothing, and says so as a failure rather than a pass."""
    found = []
    landed = Counter(f.kind for f in faults)
    for kind in kinds:
        if not landed[kind]:
            found.append(Violation(f"fault {kind} was planned but never landed (see the notes for why)"))
    hit = sum(stats.count for stats in latencies if stats.kind in MOVING_FAULTS)
    if any(landed[k] for k in MOVING_FAULTS) and not hit:
        found.append(Violation("the kills, pauses and partitions hit no workflow in flight (none was running on a "
                               "process they hit): give the workload more or longer work"))  # fmt: skip
    if not expected:
        found.append(Violation("the workload started no workflow"))
    for wave, why in sorted(failed_waves.items()):
        found.append(Violation(f"wave {wave} of the workload failed: {why}"))
    return InvariantResult("harness", "the faults landed and hit work in flight", checked=len(faults), violations=found,
                           note=", ".join(f"{k} x{n}" for k, n in sorted(landed.items())))  # fmt: skip


def build_result(options: ChaosOptions, history: ChaosHistoryRows, faults: list[FaultRecord],
                 expected: list[ExpectedOutcome], *, kinds: list[str], started_at: float, ended_at: float,
                 notes: list[str], failed_waves: dict[int, str]) -> ChaosResult:  # fmt: skip
    invariants = check_all(history, faults, expected)
    latencies = takeover_latencies(history, faults)
    invariants.append(harness_result(kinds, faults, latencies, expected, failed_waves))
    return ChaosResult(
        command=options.repro_command(),
        seed=options.seed,
        app=options.app,
        workload="built-in" if options.app == BUILTIN_APP else str(options.workload),
        nodes=options.nodes,
        workers=options.workers,
        seconds=options.seconds,
        started_at=started_at,
        ended_at=ended_at,
        faults=faults,
        invariants=invariants,
        latencies=latencies,
        throughput=throughput(history, started_at, ended_at),
        lanes=lanes(history, faults, ended_at),
        takeovers=takeover_arrows(history),
        workflows_by_status=workflows_by_status(history),
        notes=list(notes),
    )
