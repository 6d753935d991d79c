"""Picking up workflows a takeover assigned to this executor.

A takeover gives a dead member's workflows to live members by writing their executor id and a
fresh epoch into the rows, then sends a NOTIFY naming the assignee. The assignee's
:class:`AssignmentPoller` looks for PENDING rows naming it that it is not running yet, and
hands them to the runtime. The NOTIFY makes this immediate; a slow poll is the backstop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sysdb import SystemDatabase
from sysdb.logs import get_logger
from sysdb.workflow_rows import AcquiredWorkflow

from .service import BackgroundService

__all__ = ["AssignmentPoller"]

log = get_logger("pgfleet.cluster")


class AssignmentPoller(BackgroundService):
    """Runs the workflows assigned to this executor by takeovers."""

    # The backstop poll, for a NOTIFY that was lost (listener down, poll-only mode).
    POLL_INTERVAL_SEC = 15.0

    def __init__(
        self,
        db: SystemDatabase,
        executor_id: str,
        running_epochs: Callable[[], list[int]],
        run_assigned: Callable[[list[AcquiredWorkflow]], None],
        sweep: Callable[[], int] | None = None,
        member_epoch: Callable[[], int | None] = lambda: None,
    ) -> None:
        super().__init__("pgfleet-assignments", self.POLL_INTERVAL_SEC)
        self._db = db
        self._executor_id = executor_id
        self._running_epochs = running_epochs
        self._run_assigned = run_assigned
        # Also run on every poll: adopts rows this executor owns but runs nowhere (lost replies).
        self._sweep = sweep
        # Returned with the rows (``acquired_member_epoch``), so the runtime can tell a reply
        # that arrives after this membership ended.
        self._member_epoch = member_epoch
        self.paused = threading.Event()

    def poll_once(self) -> int:
        rows = self._db.assignments.assigned_not_running(self._executor_id, self._running_epochs(), self._member_epoch())
        if rows:
            log.info("picking up assigned workflows", count=len(rows))
            self._run_assigned(rows)
        return len(rows)

    def run_once(self) -> None:
        if not self.paused.is_set():
            self.poll_once()
            if self._sweep is not None:
                self._sweep()
