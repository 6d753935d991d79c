"""Retention (issue #13): deleting finished workflows older than a cutoff, in small batches.

What goes, and what never does, follows DBOS's ``garbage_collect``: workflows are aged by
``created_at`` (DBOS's choice; it is also the indexed column, so a batch reads an index range
and never scans the table), only finished ones go (never PENDING, ENQUEUED or DELAYED), and a
finished parent goes even while a child it started still runs (DBOS does the same: nothing of
the child refers to the parent's rows). With a workflow go its steps, events (and their
history), stream values, messages to it and its attempt-ledger rows. Each batch is one short
statement; the leader's batches are fenced on its lease.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .door import Door

__all__ = [
    "Retention",
    "PruneBatch",
    "PRUNABLE_STATUSES",
    "DEFAULT_PRUNE_BATCH_SIZE",
    "UNFINISHED_STATUSES",
    "check_prune_statuses",
]

# Workflows per batch unless configured: such a batch deletes in milliseconds (ops/bench/RESULTS.md,
# "Retention"), so its row locks are held only briefly.
DEFAULT_PRUNE_BATCH_SIZE = 500
# The finished statuses: what a prune deletes by default.
PRUNABLE_STATUSES = ("SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED")
# Never pruned: such a workflow still has work to do (or is waiting to).
UNFINISHED_STATUSES = ("PENDING", "ENQUEUED", "DELAYED")


def check_prune_statuses(statuses: Iterable[str]) -> tuple[str, ...]:
    """The statuses as given (upper-cased, de-duplicated, in order), or ValueError naming the
    problem: an unfinished status, an unknown one, or none at all."""
    result: list[str] = []
    for raw in statuses:
        if not isinstance(raw, str):
            raise ValueError(f"a status must be a string, got {type(raw).__name__} {raw!r}")
        status = raw.strip().upper()
        if status in UNFINISHED_STATUSES:
            raise ValueError(
                f"status {status} is never pruned: only finished workflows are ({', '.join(PRUNABLE_STATUSES)})"
            )
        if status not in PRUNABLE_STATUSES:
            raise ValueError(f"unknown status {raw!r} (one of {', '.join(PRUNABLE_STATUSES)})")
        if status not in result:
            result.append(status)
    if not result:
        raise ValueError(f"no status to prune given (one or more of {', '.join(PRUNABLE_STATUSES)})")
    return tuple(result)


@dataclass(frozen=True)
class PruneBatch:
    """What one batch deleted. ``last_created_at`` (ms) is the keyset the next batch starts at;
    None when the batch deleted nothing."""

    workflow_ids: tuple[str, ...] = ()
    last_created_at: int | None = None
    by_status: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    events: int = 0
    streams: int = 0
    messages: int = 0
    attempts: int = 0

    @property
    def workflows(self) -> int:
        """How many workflows this batch deleted."""
        return len(self.workflow_ids)


def _batch(row: dict[str, Any]) -> PruneBatch:
    by_status = row["by_status"]
    if isinstance(by_status, str):  # jsonb comes back decoded, but a text cast would not be
        by_status = json.loads(by_status)
    return PruneBatch(
        workflow_ids=tuple(row["workflow_ids"]),
        last_created_at=row["last_created_at"],
        by_status={str(k): int(v) for k, v in by_status.items()},
        steps=int(row["steps"]),
        events=int(row["events"]),
        streams=int(row["streams"]),
        messages=int(row["messages"]),
        attempts=int(row["attempts"]),
    )


def _params(older_than_ms: int, statuses: Sequence[str], batch_size: int, after_ms: int) -> dict[str, Any]:
    if older_than_ms < 0:
        raise ValueError(f"older_than_ms must be 0 or more, got {older_than_ms}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return {
        "older_than_ms": int(older_than_ms),
        "statuses": list(check_prune_statuses(statuses)),
        "batch_size": int(batch_size),
        "after_ms": int(after_ms),
    }


class Retention(Door):
    """Count and delete finished workflows older than a cutoff, a batch at a time."""

    def count_prunable(self, older_than_ms: int, statuses: Sequence[str]) -> dict[str, int]:
        """Per status, how many workflows a prune would delete now (a dry run)."""
        params = _params(older_than_ms, statuses, 1, 0)
        rows = self._execute("count_prunable_workflows", {"older_than_ms": params["older_than_ms"], "statuses": params["statuses"]})
        return {r["status"]: int(r["workflows"]) for r in rows}

    def prune_batch(self, older_than_ms: int, statuses: Sequence[str], batch_size: int, after_ms: int = 0) -> PruneBatch:
        """Delete up to ``batch_size`` of the oldest matching workflows created at or after
        ``after_ms`` and more than ``older_than_ms`` before now (database clock)."""
        return self._prune(_params(older_than_ms, statuses, batch_size, after_ms), term=None, leader_id=None, now=None)

    def prune_batch_as_leader(
        self, term: int, leader_id: str, older_than_ms: int, statuses: Sequence[str], batch_size: int, after_ms: int = 0
    ) -> PruneBatch:
        """:meth:`prune_batch`, fenced on the leader lease of ``term`` held by ``leader_id``: a
        leader whose lease expired or moved deletes nothing."""
        return self._prune(_params(older_than_ms, statuses, batch_size, after_ms), term=term, leader_id=leader_id, now=self._now())

    def _prune(self, params: dict[str, Any], **fence: Any) -> PruneBatch:
        """One batch; ``fence`` is the leader's lease (term, leader_id, now), all None for the CLI."""
        return _batch(self._execute("prune_workflows", {**params, **fence})[0])
