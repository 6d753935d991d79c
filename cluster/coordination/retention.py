"""The leader's retention duty (issue #13): prune finished workflows in small, spaced batches.

With ``workflow_retention_sec`` configured, the leader deletes finished workflows older than
that, with everything recorded for them (:mod:`sysdb.retention`), at most one batch of
``batch_size`` per round and one round every ``interval_sec``: the cost is bounded by
configuration however large the backlog, and the claimers and owners sharing the database see
only short statements. Each batch is fenced on the leader's lease, so a deposed leader (its
lease expired or moved) deletes nothing. A backlog drains at ``batch_size / interval_sec``
workflows per second; once a batch comes back short the duty rests for ``idle_interval_sec``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sysdb import SystemDatabase
from sysdb.leadership import LeaderAction
from sysdb.logs import get_logger
from sysdb.retention import DEFAULT_PRUNE_BATCH_SIZE, PRUNABLE_STATUSES, PruneBatch, check_prune_statuses

__all__ = ["RetentionDuty", "DEFAULT_PRUNE_BATCH_SIZE", "PRUNE_INTERVAL_SEC", "PRUNE_IDLE_INTERVAL_SEC"]

log = get_logger("pgfleet.cluster")

# Between two batches while a backlog remains: the leader's housekeeping pace.
PRUNE_INTERVAL_SEC = 5.0
# After a short batch (the backlog is gone): new work only ages past the cutoff slowly.
PRUNE_IDLE_INTERVAL_SEC = 60.0


class RetentionDuty:
    """A leader duty (``LeaderDuties(extra_duties=[...])``): called every leader tick with the
    term, it runs at most one fenced prune batch per ``interval_sec``."""

    def __init__(
        self,
        db: SystemDatabase,
        executor_id: str,
        retention_sec: float,
        statuses: Sequence[str] = PRUNABLE_STATUSES,
        batch_size: int = DEFAULT_PRUNE_BATCH_SIZE,
        *,
        interval_sec: float = PRUNE_INTERVAL_SEC,
        idle_interval_sec: float = PRUNE_IDLE_INTERVAL_SEC,
        on_pruned: Callable[[PruneBatch], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``on_pruned`` sees each batch that deleted something (the runtime forgets their
        transaction outputs in the application database); ``clock`` (monotonic seconds) paces
        the rounds, by default the database's ``coordination_clock``."""
        if retention_sec <= 0:
            raise ValueError(f"retention_sec must be greater than 0, got {retention_sec!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
        self._db = db
        self._executor_id = executor_id
        self._older_than_ms = int(retention_sec * 1000)
        self._statuses = check_prune_statuses(statuses)
        self._batch_size = batch_size
        self._interval_sec = interval_sec
        self._idle_interval_sec = idle_interval_sec
        self._on_pruned = on_pruned
        self._clock = clock if clock is not None else db.coordination_clock.monotonic
        self._next_round = 0.0
        # The keyset (created_at, ms) the next batch starts from: rows below it that a batch
        # left (locked, or resumed meanwhile) are not read again until the backlog is gone.
        self._after_ms = 0

    def __call__(self, term: int) -> None:
        if self._clock() < self._next_round:
            return
        # Paced before the batch runs, so a failing batch is not retried at every tick either.
        self._next_round = self._clock() + self._idle_interval_sec
        batch = self.prune_once(term)
        if batch.workflows >= self._batch_size:  # a backlog remains: the next batch sooner
            self._next_round = self._clock() + self._interval_sec

    def prune_once(self, term: int) -> PruneBatch:
        """One fenced batch now, whatever the pacing; returns what it deleted."""
        batch = self._db.retention.prune_batch_as_leader(
            term, self._executor_id, self._older_than_ms, self._statuses, self._batch_size, self._after_ms
        )
        if batch.workflows < self._batch_size:
            self._after_ms = 0  # the range is done: start from the oldest again next round
        elif batch.last_created_at is not None:
            self._after_ms = batch.last_created_at
        if batch.workflows:
            log.info("pruned finished workflows", term=term, workflows=batch.workflows, steps=batch.steps)
            self._db.leadership.log_action(
                term, self._executor_id, LeaderAction.PRUNE, {"workflows": batch.workflows, "by_status": batch.by_status}
            )
            if self._on_pruned is not None:
                self._on_pruned(batch)
        return batch
