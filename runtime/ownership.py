"""Writes that hand out ownership, made safe against lost replies.

A COMMIT can succeed and its reply be lost; the retry then meets its own effect. Two mechanisms
make that harmless:

- **Attempt tokens.** A start (and a child start, a recovery take-over) draws its
  ownership epoch *before* its write (``db.workflows.reserve_epoch``) and holds it in this
  executor's running set from then on. A retry that finds a row bearing that epoch knows the row
  is its own and runs it; and the orphan sweep below never adopts a row being started.
- **The orphan sweep.** A claim hands out fresh epochs in its UPDATE, one per claimed row, so a
  claim whose reply was lost leaves rows PENDING under this executor that nothing here runs
  (under a concurrency limit, a queue would stop fleet-wide). ``adopt_orphans`` finds PENDING
  rows naming this executor with an epoch no thread here runs, and runs them. It cannot
  double-run a row that is merely between its claim and its thread start: it reads the
  candidates, waits until every claim in flight at that moment has handed its rows to threads
  (:class:`OwningWrites`), reads again, and adopts only rows seen both times whose epoch is
  still not running; each adoption takes the epoch under the executor's lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sysdb.workflow_rows import AcquiredWorkflow, NewWorkflow

from . import recovery

if TYPE_CHECKING:
    from .context import WorkflowContext
    from .executor import Executor

__all__ = ["OwningWrites", "insert_start_row", "adopt_orphans"]

# How long a sweep waits for in-flight claims to settle before giving up until its next round.
SETTLE_TIMEOUT_SEC = 10.0


class OwningWrites:
    """The claims in flight in this process: from before their statement until their rows run."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._in_flight: set[int] = set()

    @contextmanager
    def track(self) -> Iterator[None]:
        with self._cond:
            token = self._next
            self._next += 1
            self._in_flight.add(token)
        try:
            yield
        finally:
            with self._cond:
                self._in_flight.discard(token)
                self._cond.notify_all()

    def wait_settled(self, timeout_sec: float = SETTLE_TIMEOUT_SEC) -> bool:
        """Wait until every write in flight now has finished (later ones do not count)."""
        with self._cond:
            pending = set(self._in_flight)
            return self._cond.wait_for(lambda: not (pending & self._in_flight), timeout_sec)


def insert_start_row(
    executor: Executor, parent: WorkflowContext | None, new: NewWorkflow, function_id: int | None
) -> int | None:
    """Create a started workflow's row (a child's together with its parent's step) under an
    epoch drawn beforehand. Returns the epoch, or ``None`` when the id exists and is not this
    start's own row. Raises ``OwnershipLostError`` when the parent is no longer owned."""
    token = executor.db.workflows.reserve_epoch()
    executor.hold_epoch(token)  # before the write: the orphan sweep must never take this row
    try:
        if parent is None:
            epoch = executor.db.workflows.insert(new, owner_epoch=token)
        else:
            assert function_id is not None  # a start inside a workflow always has a position
            epoch = executor.db.workflows.start_child(
                new, owner_epoch=token, function_id=function_id, parent_owner_epoch=parent.owner_epoch
            )
    except BaseException:
        executor.release_epoch(token)
        raise
    if epoch is None:
        executor.release_epoch(token)
    return epoch


def adopt_orphans(executor: Executor, owning_writes: OwningWrites, held_epochs: Callable[[], list[int]]) -> int:
    """Run the PENDING workflows that name this executor but that no thread here runs (see the
    module docstring), nor anything else here holds (``held_epochs``: the running ones and the
    rows background recovery is about to replay). Returns how many were adopted.

    Adopted rows run in the generation read before the first read: if this executor abandons
    its work meanwhile (membership lost), they are abandoned too and its rejoin recovers them."""
    generation = executor.generation
    first = _owned_not_running(executor, held_epochs)
    if not first or not owning_writes.wait_settled():
        return 0
    seen = {(row.workflow_uuid, row.owner_epoch) for row in first}
    orphans = [
        row
        for row in _owned_not_running(executor, held_epochs)
        if (row.workflow_uuid, row.owner_epoch) in seen
        and row.owner_epoch not in held_epochs()
        and executor.hold_epoch(row.owner_epoch)
    ]
    if orphans:
        executor.log.warning(
            "adopting workflows this executor owns but was not running (a lost reply, an outage, or a cancelled awaiting task)",
            workflow_ids=[row.workflow_uuid for row in orphans],
        )
    for row in orphans:
        try:
            # A row this process cannot run keeps its epoch held, so it is not retried each round.
            recovery.run_assigned(executor, [row], generation)
        except Exception as exc:  # e.g. the database went away: try again next round
            executor.release_epoch(row.owner_epoch)
            executor.log.warning("could not adopt workflow", adopted_workflow_id=row.workflow_uuid, error=str(exc))
    return len(orphans)


def _owned_not_running(executor: Executor, held_epochs: Callable[[], list[int]]) -> list[AcquiredWorkflow]:
    return executor.db.recovery.owned_not_running(executor.executor_id, held_epochs())
