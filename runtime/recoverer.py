"""Recovering this executor's PENDING workflows in the background, at launch and after a rejoin.

Recovery costs a few round trips per workflow, so a large backlog on a slow database takes
long: it must not run inside ``DBOS.launch()`` (a supervised worker would miss its boot
deadline and be killed mid-recovery, again and again) nor in the heartbeat thread (the member
would fall silent and be declared dead). The caller lists the rows first, in one statement and
before it takes new work, so the list holds only what an earlier life of this executor left;
this service replays them while the executor claims and runs new work. The assignment poller
skips the rows it holds (:meth:`RecoveryService.pending_epochs`), so that no row is replayed
by both.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from cluster.coordination.service import BackgroundService, exponential_backoff
from sysdb.recovery import PendingWorkflow

from . import recovery

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["RecoveryService"]


class RecoveryService(BackgroundService):
    """Replays listed PENDING rows; retries the ones still running here (abandoned) or failed."""

    # Rows whose abandoned execution is still stopping are looked at again this often.
    RETRY_SEC = 0.2
    # With nothing to do, the thread sleeps until a new list arrives (submit wakes it).
    IDLE_SEC = 3600.0

    def __init__(self, executor: Executor) -> None:
        super().__init__("pgfleet-recovery", self.IDLE_SEC)
        self._executor = executor
        self._lock = threading.Lock()
        self._rows: list[PendingWorkflow] = []  # waiting for the next pass
        self._passing: list[PendingWorkflow] = []  # in the pass running now
        self._generation = executor.generation
        self._failed_passes = 0  # consecutive passes in which some recovery failed (backoff)
        self.idle = threading.Event()  # set while nothing is left to recover
        self.idle.set()

    def wait_first(self) -> bool:
        return False

    def submit(self, rows: list[PendingWorkflow], generation: int | None = None) -> None:
        """Recover these rows (added to any not yet recovered). They are recovered only while
        the executor stays in its current generation: once it abandons its work (membership
        lost) they are dropped, and listed again when it rejoins."""
        with self._lock:
            self._generation = self._executor.generation if generation is None else generation
            known = {r.workflow_uuid for r in self._rows}
            self._rows.extend(r for r in rows if r.workflow_uuid not in known)
            if self._rows:
                self.idle.clear()
        self.wake()

    def pending_epochs(self) -> list[int]:
        """The ownership epochs of the rows this service holds: nobody else may run them."""
        with self._lock:
            return [r.owner_epoch for r in self._rows + self._passing if r.owner_epoch is not None]

    def _current(self, generation: int) -> bool:
        return self._executor.generation == generation and not self.stopping

    def run_once(self) -> float | None:
        with self._lock:
            rows, self._rows = self._rows, []
            self._passing, generation = rows, self._generation
        retry: list[PendingWorkflow] = []
        try:
            if rows and self._current(generation):  # else nothing to do, abandoned or stopping
                running, failed = recovery.recover_rows(self._executor, rows, lambda: self._current(generation))
                retry = running + failed
                self._failed_passes = self._failed_passes + 1 if failed else 0
        except BaseException:
            retry = rows  # nothing is lost: the service backs off and tries again
            raise
        finally:
            # Handed back in one step, so the rows never leave pending_epochs() in between.
            with self._lock:
                known = {r.workflow_uuid for r in self._rows}
                self._rows.extend(r for r in retry if r.workflow_uuid not in known)
                self._passing = []
                if not self._rows:
                    self.idle.set()
        if not retry:
            return None
        return exponential_backoff(self.RETRY_SEC, self._failed_passes + 1, self.MAX_BACKOFF_SEC)
