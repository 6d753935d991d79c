"""The queue invariants of a chaos run, replaying the ownership log in commit order and counting
exactly what sysdb/sql/claim_queued_workflows.sql counts, so that a correct run never trips them:

- ``queue-limits``: the PENDING rows of one queue and partition key (``IS NOT DISTINCT FROM``:
  an unpartitioned queue is the one NULL partition) never exceed its ``concurrency``, nor those
  of one executor its ``worker_concurrency``. A claim holds the queue's lock until it commits, so
  its commit follows every claim it counted and every release it saw: the replay never
  overcounts (a release that committed during a claim is counted as already gone, in the
  claim's favour).
- ``rate-limits``: at each claim, the rows of the queue and partition with ``rate_limited``
  whose latest ``started_at_epoch_ms`` lies within the limiter's period before the claim's time
  (the ``started_at_epoch_ms`` it gives its rows: the claim's own clock), the claimed ones
  included, do not exceed the limit. A finished row still counts; a requeued one, whose start
  time the requeue clears, does not: as the claim counts them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from sysdb.chaos_history import ChaosHistoryRows, OwnershipChange, QueueLimits

from .model import InvariantResult, Violation
from .replay import evidence, ordered, ts

__all__ = ["check_queue_limits", "check_rate_limits", "queue_peaks"]

Group = tuple[str, str | None]  # (queue, partition key)


@dataclass
class _Row:
    group: Group | None
    status: str
    executor_id: str | None
    rate_limited: bool
    started_ms: int | None


@dataclass
class _State:
    rows: dict[str, _Row] = field(default_factory=dict)
    running: dict[Group, dict[str, str | None]] = field(default_factory=lambda: defaultdict(dict))  # workflow → executor
    members: dict[Group, set[str]] = field(default_factory=lambda: defaultdict(set))  # every row in the queue partition


def _replay(changes: list[OwnershipChange]) -> Iterator[tuple[OwnershipChange, _Row | None, _State]]:
    """Each change in commit order, with the row's state before it and every queue's rows after."""
    state = _State()
    for change in ordered(changes):
        before = state.rows.get(change.workflow_uuid)
        if before is not None and before.group is not None:
            state.running[before.group].pop(change.workflow_uuid, None)
            state.members[before.group].discard(change.workflow_uuid)
        group = (change.queue_name, change.queue_partition_key) if change.queue_name is not None else None
        state.rows[change.workflow_uuid] = _Row(group, change.status, change.executor_id, change.rate_limited, change.started_at_epoch_ms)
        if group is not None:
            state.members[group].add(change.workflow_uuid)
            if change.status == "PENDING":
                state.running[group][change.workflow_uuid] = change.executor_id
        yield change, before, state


def _scope(group: Group, executor: str | None = None) -> str:
    queue, key = group
    text = f"queue {queue}" + (f" partition {key}" if key is not None else "")
    return text + (f" on executor {executor}" if executor is not None else "")


def _limits(history: ChaosHistoryRows) -> dict[str, QueueLimits]:
    return {q.name: q for q in history.queues}


def _over(running: dict[str, str | None], limits: QueueLimits) -> dict[str, tuple[int, int]]:
    """What is over its limit now ("*": the partition, else an executor) → (count, limit)."""
    over: dict[str, tuple[int, int]] = {}
    if limits.concurrency is not None and len(running) > limits.concurrency:
        over["*"] = (len(running), limits.concurrency)
    if limits.worker_concurrency is not None:
        counts: dict[str, int] = defaultdict(int)
        for executor in running.values():
            counts[executor or "-"] += 1
        over |= {e: (n, limits.worker_concurrency) for e, n in counts.items() if n > limits.worker_concurrency}
    return over


def queue_peaks(history: ChaosHistoryRows) -> dict[Group, tuple[int, int]]:
    """The most PENDING rows each queue partition had at once, in total and on one executor: how
    close the run came to the limits (a check of a queue that never filled proves little)."""
    peaks: dict[Group, tuple[int, int]] = {}
    for change, _, state in _replay(history.ownership):
        if change.queue_name is None:
            continue
        group = (change.queue_name, change.queue_partition_key)
        running = state.running[group]
        per: dict[str | None, int] = defaultdict(int)
        for executor in running.values():
            per[executor] += 1
        total, one = peaks.get(group, (0, 0))
        peaks[group] = (max(total, len(running)), max(one, max(per.values(), default=0)))
    return peaks


def check_queue_limits(history: ChaosHistoryRows) -> InvariantResult:
    """PENDING rows of each queue (partition) within concurrency and worker_concurrency."""
    limits = _limits(history)
    limited = {n for n, q in limits.items() if q.concurrency is not None or q.worker_concurrency is not None}
    found: list[Violation] = []
    was_over: dict[Group, set[str]] = defaultdict(set)
    checked = 0
    for change, _, state in _replay(history.ownership):
        if change.queue_name not in limited:
            continue
        checked += 1
        group = (change.queue_name, change.queue_partition_key)
        running = state.running[group]
        over = _over(running, limits[change.queue_name])
        for what in sorted(set(over) - was_over[group]):
            count, cap = over[what]
            members = sorted(w for w, e in running.items() if what == "*" or (e or "-") == what)
            found.append(Violation(
                f"{_scope(group, None if what == '*' else what)}: {count} workflows PENDING at {ts(change.at)}, limit {cap}, "
                f"after {change.workflow_uuid} became {change.status} on {change.executor_id}: {members}",
                [evidence(change, pending=members)],
            ))
        was_over[group] = set(over)
    peaks = queue_peaks(history)
    notes = [
        f"{_scope(g)}: peak {total} PENDING (concurrency {limits[g[0]].concurrency}), "
        f"{one} on one executor (worker_concurrency {limits[g[0]].worker_concurrency})"
        for g, (total, one) in sorted(peaks.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        if g[0] in limited
    ]
    note = "; ".join(notes) if notes else "no queue had a concurrency or worker_concurrency limit"
    return InvariantResult("queue-limits", "queue concurrency and worker concurrency never exceeded", checked, found, note)


def _in_window(state: _State, group: Group, now_ms: int, period_ms: int) -> list[tuple[str, int]]:
    rows = ((w, state.rows[w]) for w in state.members[group])
    return sorted((w, r.started_ms) for w, r in rows if r.rate_limited and r.started_ms is not None and r.started_ms > now_ms - period_ms)


def check_rate_limits(history: ChaosHistoryRows) -> InvariantResult:
    """At each claim, the starts within the limiter's period do not exceed its limit."""
    limits = {n: q for n, q in _limits(history).items() if q.rate_limit_max is not None and q.rate_limit_period_sec is not None}
    found: list[Violation] = []
    was_over: set[Group] = set()
    peaks: dict[str, int] = {}
    checked = 0
    for change, before, state in _replay(history.ownership):
        limit = limits.get(change.queue_name or "")
        is_claim = change.status == "PENDING" and (before is None or before.status != "PENDING")
        if limit is None or not is_claim:
            continue
        checked += 1
        assert limit.rate_limit_max is not None and limit.rate_limit_period_sec is not None
        group = (limit.name, change.queue_partition_key)
        now_ms = change.started_at_epoch_ms if change.started_at_epoch_ms is not None else int(change.at * 1000)
        window = _in_window(state, group, now_ms, int(limit.rate_limit_period_sec * 1000))  # as sysdb/claims.py sends it
        peaks[limit.name] = max(peaks.get(limit.name, 0), len(window))
        if len(window) > limit.rate_limit_max and group not in was_over:
            found.append(Violation(
                f"{_scope(group)}: {len(window)} workflows started within {limit.rate_limit_period_sec:g}s before the claim of "
                f"{change.workflow_uuid} by {change.executor_id} at {ts(now_ms / 1000)}, limit {limit.rate_limit_max}: "
                f"{[w for w, _ in window]}",
                [evidence(change), *({"workflow_uuid": w, "started_at_epoch_ms": ms} for w, ms in window)],
            ))
        was_over = (was_over | {group}) if len(window) > limit.rate_limit_max else (was_over - {group})
    if not limits:
        note = "no queue had a rate limit"
    else:
        note = "; ".join(
            f"queue {n}: peak {peaks.get(n, 0)} starts in {q.rate_limit_period_sec:g}s (limit {q.rate_limit_max})" for n, q in sorted(limits.items())
        )
    return InvariantResult("rate-limits", "queue rate limits never exceeded", checked, found, note)
