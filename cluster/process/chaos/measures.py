"""What a chaos run measured, beside its invariants: takeover latency per fault kind, throughput
over time, the executor processes as the report's lanes, and the takeovers as its arrows.

Latency, for a fault that hit executors (kill-node, kill-worker, pause-node, pause-worker,
partition): the workflows PENDING on the hit executors at the fault (from the ownership replay);
for each, the first step body started after the fault under another ownership (a different
executor, or the same executor id with a new epoch: a restarted worker), minus the fault's time.
A hit workflow that ran no further step body (it finished, or waited) gives no sample. For a
fault of the database (restart-db, terminate-backends): from the fault (its end, once the server
was back) to the first step body started anywhere after it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from sysdb.chaos_history import ChaosHistoryRows, StepStart

from .invariants_steps import body_starts
from .model import FAULT_KINDS, FaultRecord, Lane, LatencyStats, ThroughputPoint
from .replay import Ownership, ordered, parse_writer, replay_ownership

__all__ = ["percentile", "takeover_latencies", "throughput", "lanes", "takeover_arrows", "workflows_by_status"]

EXECUTOR_FAULTS = ("kill-node", "kill-worker", "pause-node", "pause-worker", "partition")
DATABASE_FAULTS = ("restart-db", "terminate-backends")
KILL_FAULTS = ("kill-node", "kill-worker")
FINISHED = ("SUCCESS", "ERROR")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-quantile (0..1) of ``values``, interpolated linearly between the closest ranks
    (numpy's default); None for no values."""
    if not values:
        return None
    ordered_values = sorted(values)
    position = (len(ordered_values) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered_values[low] + (ordered_values[high] - ordered_values[low]) * (position - low)


def _starts_by_workflow(history: ChaosHistoryRows) -> dict[str, list[StepStart]]:
    by: dict[str, list[StepStart]] = {}
    for s in sorted(body_starts(history), key=lambda s: (s.at, s.id)):
        by.setdefault(s.workflow_uuid, []).append(s)
    return by


def _executor_fault_samples(owned: list[Ownership], fault: FaultRecord, starts: dict[str, list[StepStart]]) -> list[float]:
    hit = set(fault.executors)
    samples = []
    for own in owned:
        if own.executor_id not in hit or not own.held_at(fault.at):
            continue
        later = (s for s in starts.get(own.workflow_uuid, []) if s.at > fault.at and (s.executor_id, s.owner_epoch) != (own.executor_id, own.epoch))
        first = next(later, None)
        if first is not None:
            samples.append(first.at - fault.at)
    return samples


def takeover_latencies(history: ChaosHistoryRows, faults: list[FaultRecord]) -> list[LatencyStats]:
    """p50/p99/max latency per fault kind that occurred, in FAULT_KINDS order."""
    starts = _starts_by_workflow(history)
    owned = list(replay_ownership(history.ownership).values())
    all_starts = sorted(body_starts(history), key=lambda s: s.at)
    samples: dict[str, list[float]] = {}
    for fault in faults:
        got = samples.setdefault(fault.kind, [])
        if fault.kind in EXECUTOR_FAULTS:
            got += _executor_fault_samples(owned, fault, starts)
        elif fault.kind in DATABASE_FAULTS:
            since = fault.ended_at if fault.ended_at is not None else fault.at
            first = next((s for s in all_starts if s.at > since), None)
            if first is not None:
                got.append(first.at - since)
    order = [k for k in FAULT_KINDS if k in samples] + sorted(k for k in samples if k not in FAULT_KINDS)
    return [
        LatencyStats(kind, len(samples[kind]), percentile(samples[kind], 0.5), percentile(samples[kind], 0.99), max(samples[kind], default=None))
        for kind in order
    ]


def throughput(history: ChaosHistoryRows, start: float, end: float, bucket_sec: float = 1.0) -> list[ThroughputPoint]:
    """Workflows reaching SUCCESS or ERROR (their first such commit) per bucket of ``bucket_sec``
    seconds from ``start`` to ``end`` (the last bucket holds ``end`` itself)."""
    if bucket_sec <= 0:
        raise ValueError(f"bucket_sec must be positive, got {bucket_sec}")
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    count = max(1, math.ceil((end - start) / bucket_sec))
    buckets = [0] * count
    seen: set[str] = set()
    for change in ordered(history.ownership):
        if change.status not in FINISHED or change.workflow_uuid in seen:
            continue
        seen.add(change.workflow_uuid)
        if start <= change.at <= end:
            buckets[min(count - 1, int((change.at - start) // bucket_sec))] += 1
    return [ThroughputPoint(start + i * bucket_sec, bucket_sec, n) for i, n in enumerate(buckets)]


def _node_of(executor_id: str, faults: list[FaultRecord]) -> str:
    for fault in faults:
        if fault.node is not None and executor_id in fault.executors:
            return fault.node
    match = re.fullmatch(r"(.+)-\d+", executor_id)  # a supervised worker: <node>-<slot>
    return match.group(1) if match is not None else executor_id


def _sightings(history: ChaosHistoryRows, end: float) -> dict[tuple[str, int], list[float]]:
    seen: dict[tuple[str, int], list[float]] = {}

    def saw(executor_id: str, pid: int, at: float) -> None:
        if at <= end:
            seen.setdefault((executor_id, pid), []).append(at)

    written: list[tuple[str, float]] = [(c.writer, c.at) for c in history.ownership] + [(w.writer, w.at) for w in history.writes]
    for name, at in written:
        writer = parse_writer(name)
        if writer is not None:
            saw(writer.executor_id, writer.pid, at)
    for s in history.starts:
        saw(s.executor_id, s.pid, s.at)
    for m in history.members:
        if m.pid is not None and m.last_heartbeat is not None:
            saw(m.executor_id, m.pid, m.last_heartbeat)
    return seen


def lanes(history: ChaosHistoryRows, faults: list[FaultRecord], end: float) -> list[Lane]:
    """One lane per executor process (executor id, pid) seen up to ``end`` (as a session writer,
    in the attempt ledger, or as a member), from its first sighting to its end: the first kill
    fault that lists its pid; else None (to the end) when it is its member row's live process;
    else its last sighting (a process that went away unseen, e.g. replaced after a crash)."""
    live = {(m.executor_id, m.pid) for m in history.members if m.status == "active"}
    result = []
    for (executor_id, pid), times in sorted(_sightings(history, end).items(), key=lambda kv: (min(kv[1]), kv[0])):
        first = min(times)
        kills = [f.at for f in faults if f.kind in KILL_FAULTS and pid in f.pids and first <= f.at <= end]
        stop: float | None
        if kills:
            stop = min(kills)
        elif (executor_id, pid) in live:
            stop = None
        else:
            stop = max(times)
        result.append(Lane(_node_of(executor_id, faults), executor_id, pid, first, stop))
    return result


def _pid_of(own: Ownership | None, starts: list[StepStart]) -> int | None:
    """The process that held an ownership: from its grant, else from a body it started."""
    if own is None:
        return None
    if own.pid is not None:
        return own.pid
    return next((s.pid for s in starts if s.owner_epoch == own.epoch and s.executor_id == own.executor_id), None)


def takeover_arrows(history: ChaosHistoryRows) -> list[dict[str, Any]]:
    """One arrow per takeover (dbos.pgfleet_takeovers), from the owner that lost the workflow to
    the one that next ran it (for a requeued one, its next claimer), with their pids when known:
    ``workflow, from_executor_id, from_epoch, from_pid, to_executor_id, to_epoch, to_pid, at,
    resumed_at`` (the first step body under the new owner), ``requeued_to, by_executor_id, leader_term``."""
    owned = replay_ownership(history.ownership)
    by_workflow: dict[str, list[Ownership]] = {}
    for o in owned.values():
        by_workflow.setdefault(o.workflow_uuid, []).append(o)
    starts = _starts_by_workflow(history)
    arrows = []
    for t in sorted(history.takeovers, key=lambda t: t.at):
        source = owned.get((t.workflow_uuid, t.from_epoch)) if t.from_epoch is not None else None
        target = owned.get((t.workflow_uuid, t.to_epoch)) if t.to_epoch is not None else None
        if target is None:  # requeued (or not in the log): the next ownership after the takeover
            later = [o for o in by_workflow.get(t.workflow_uuid, []) if o.start >= t.at and o.epoch != t.from_epoch]
            target = min(later, key=lambda o: o.start, default=None)
        resumed = None
        if target is not None:
            resumed = next((s for s in starts.get(t.workflow_uuid, []) if s.owner_epoch == target.epoch), None)
        arrows.append({
            "workflow": t.workflow_uuid, "from_executor_id": t.from_executor_id, "from_epoch": t.from_epoch,
            "from_pid": _pid_of(source, starts.get(t.workflow_uuid, [])),
            "to_executor_id": target.executor_id if target is not None else t.to_executor_id,
            "to_epoch": target.epoch if target is not None else t.to_epoch,
            "to_pid": (resumed.pid if resumed is not None else target.pid) if target is not None else None,
            "at": t.at, "resumed_at": resumed.at if resumed is not None else None,
            "requeued_to": t.requeued_to, "by_executor_id": t.by_executor_id, "leader_term": t.leader_term,
        })  # fmt: skip
    return arrows


def workflows_by_status(history: ChaosHistoryRows) -> dict[str, int]:
    """How many workflow rows the run left in each status (ChaosResult.workflows_by_status)."""
    return dict(sorted(Counter(s.status for s in history.statuses).items()))
