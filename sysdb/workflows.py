"""The door to workflow status rows: starting, enqueueing, reading and finishing workflows.

Every write that belongs to a running workflow is fenced: it names the owner executor and the
ownership epoch, and succeeds only while the row still names both (``OwnershipLostError``).
A start draws its epoch before its write (:meth:`Workflows.reserve_epoch`): the epoch is also
the write's attempt token, so a retry after a lost reply recognises the row it committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from .caller import CallerTransaction, _run_in, violated_constraint
from .door import Door, StatementRunner
from .errors import DeduplicatedError
from .fencing import STEP_KEY_CONSTRAINT, counting_attempts, is_own_row, ownership_lost, with_own_step
from .timestamps import now_ms
from .workflow_rows import NewWorkflow, QueuePlacement, WorkflowOutcome, WorkflowRow

if TYPE_CHECKING:
    from .database import DictConnection, Row, SystemDatabase
    from .steps import StepRecord

__all__ = ["Workflows", "EPOCH_BLOCK"]

# How many ownership epochs one round trip draws (see reserve_epoch).
EPOCH_BLOCK = 32
# The partial unique index that holds one live deduplication id per queue.
DEDUP_CONSTRAINT = "uq_workflow_status_dedup_id"


class Workflows(Door):
    """Workflow status rows: create them (started or queued), read them, record the outcome."""

    def __init__(self, db: SystemDatabase, runner: StatementRunner | None = None) -> None:
        super().__init__(db, runner)
        self._epochs: list[int] = []
        self._epochs_lock = threading.Lock()

    def reserve_epoch(self) -> int:
        """A fresh ownership epoch, never handed out before, drawn before the write that uses it
        so that it is also that write's attempt token (see ``sysdb/sql/draw_epochs.sql``)."""
        with self._epochs_lock:
            if not self._epochs:
                rows = self._execute("draw_epochs", {"count": EPOCH_BLOCK})
                self._epochs = [row["epoch"] for row in reversed(rows)]
            return self._epochs.pop()

    def insert(self, new: NewWorkflow, *, owner_epoch: int) -> int | None:
        """Create a PENDING workflow owned by ``new.executor_id`` with the epoch ``owner_epoch``
        (from :meth:`reserve_epoch`).

        Returns that epoch, or ``None`` when the workflow id exists already. A retry after a
        lost reply finds the row its first attempt committed, bearing its epoch: that is its own.
        """
        values = {**new.params(), "owner_epoch": owner_epoch, "now_ms": now_ms()}
        run, attempts = counting_attempts(lambda: self._db._execute_once("insert_workflow", values))
        rows = self._db.with_retries(run)
        if rows:
            inserted_epoch: int = rows[0]["owner_epoch"]
            return inserted_epoch
        if attempts() > 1 and is_own_row(self._db, new.workflow_id, new.owner(), owner_epoch):
            return owner_epoch
        return None

    def start_child(self, new: NewWorkflow, *, owner_epoch: int, function_id: int, parent_owner_epoch: int) -> int | None:
        """Record the parent's step ``function_id`` naming the child and create the child, in
        one statement, fenced on the parent (``new.parent_workflow_id`` under
        ``new.executor_id`` and ``parent_owner_epoch``).

        Returns the child's ownership epoch, ``owner_epoch`` (``None`` if the child id existed
        already). Raises :class:`OwnershipLostError` if the parent is no longer owned. A retry
        after a lost reply meets the parent's step row it committed (a unique violation): when
        the child row bears this start's epoch, both are its own.
        """
        parent_id = new.parent_workflow_id
        if parent_id is None:
            raise ValueError(f"child workflow {new.workflow_id!r} names no parent")
        values = {
            **new.params(), "owner_epoch": owner_epoch, "function_id": function_id,
            "parent_owner_epoch": parent_owner_epoch, "now_ms": now_ms(),
        }
        run, attempts = counting_attempts(lambda: self._db._execute_once("start_child_workflow", values))
        try:
            rows = self._db.with_retries(run)
        except psycopg.errors.UniqueViolation as exc:
            if attempts() > 1 and exc.diag.constraint_name == STEP_KEY_CONSTRAINT and is_own_row(
                self._db, new.workflow_id, new.owner(), owner_epoch
            ):
                return owner_epoch
            raise
        if not rows or rows[0]["parent_owned"] == 0:
            raise ownership_lost(self._db, parent_id, new.owner(), parent_owner_epoch)
        child_epoch: int | None = rows[0]["child_epoch"]
        return child_epoch

    def enqueue(self, new: NewWorkflow, placement: QueuePlacement, parent_step: StepRecord | None = None) -> bool:
        """Insert an ENQUEUED (or DELAYED) workflow. Returns False when the id exists already.

        With ``parent_step`` (an enqueue from inside a workflow) the parent's fenced step row and
        the new workflow commit together; when the id is another function's (or class's, or
        instance's) neither does, as in DBOS, which records no start for a conflict. Raises
        :class:`DeduplicatedError` for a live deduplication id and :class:`OwnershipLostError`
        when the parent is no longer owned.
        """
        values = {**new.params(), **placement.params(), "now_ms": now_ms()}

        def run() -> bool:
            with self._db.pooled() as conn:
                if parent_step is None:  # one statement: no transaction around it
                    return _insert_enqueued(lambda name, params: self._db._execute_on(conn, name, params), values)
                with conn.transaction():
                    self._db.steps.record(parent_step, connection=conn)
                    if _insert_enqueued(lambda name, params: self._db._execute_on(conn, name, params), values):
                        return True
                    held = self.status(new.workflow_id, connection=conn)
                    if held is not None and (held.name, held.class_name, held.config_name) != (new.name, new.class_name, new.config_name):
                        raise _HeldByAnother()  # rolls the parent's step back with it
                    return False

        try:
            return with_own_step(self._db, run, parent_step, lambda _recorded: True)
        except _HeldByAnother:
            return False
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name == DEDUP_CONSTRAINT and placement.deduplication_id is not None:
                raise DeduplicatedError(placement.queue_name, placement.deduplication_id) from None
            raise

    def enqueue_in(self, caller: CallerTransaction, new: NewWorkflow, placement: QueuePlacement) -> bool:
        """Insert an ENQUEUED (or DELAYED) workflow inside the caller's own transaction (it is
        queued when that commits; claimers find it at their next poll). Returns False when the
        id exists already; raises :class:`DeduplicatedError` for a live deduplication id."""
        values = {**new.params(), **placement.params(), "now_ms": now_ms()}
        try:
            return _insert_enqueued(lambda name, params: _run_in(caller, name, params), values)
        except Exception as exc:
            if violated_constraint(exc) == DEDUP_CONSTRAINT and placement.deduplication_id is not None:
                raise DeduplicatedError(placement.queue_name, placement.deduplication_id) from None
            raise

    def status(self, workflow_id: str, *, connection: DictConnection | None = None) -> WorkflowRow | None:
        """The workflow's status row (None: no such workflow); with ``connection``, read on it."""
        params = {"workflow_id": workflow_id}
        if connection is None:
            rows = self._execute("get_workflow_status", params)
        else:
            rows = self._db._execute_on(connection, "get_workflow_status", params)
        return WorkflowRow(**rows[0]) if rows else None

    def trace_carrier(self, workflow_id: str) -> dict[str, Any] | None:
        """The trace carrier recorded in the workflow's attributes (``dbos.otelContext``), if
        it is a JSON object (attributes are the user's to write: any other shape is none)."""
        rows = self._execute("get_workflow_trace_carrier", {"workflow_id": workflow_id})
        carrier = rows[0]["carrier"] if rows else None
        return carrier if isinstance(carrier, dict) else None

    def outcome(self, workflow_id: str) -> WorkflowOutcome | None:
        """What a waiter needs: the status and, once finished, the recorded output or error."""
        rows = self._execute("get_workflow_outcome", {"workflow_id": workflow_id})
        return WorkflowOutcome(**rows[0]) if rows else None

    def finish(
        self, *, workflow_id: str, executor_id: str, owner_epoch: int, status: str, output: str | None, error: str | None
    ) -> None:
        """Record a workflow's final status, fenced. Raises :class:`OwnershipLostError`.

        A retry after a lost COMMIT reply finds the row no longer PENDING (zero rows): when it
        bears this outcome under this owner and epoch, that was this write's own commit."""
        params = {
            "workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch,
            "status": status, "output": output, "error": error, "now_ms": now_ms(),
        }
        run, attempts = counting_attempts(lambda: self._db._execute_count_once("finish_workflow", params))
        if self._db.with_retries(run) > 0:
            return
        if attempts() > 1:
            row = self.status(workflow_id)
            if row and (row.status, row.executor_id, row.owner_epoch) == (status, executor_id, owner_epoch):
                return
        raise ownership_lost(self._db, workflow_id, executor_id, owner_epoch)

    def cancel_owned_past_deadline(self, workflow_id: str, executor_id: str, owner_epoch: int) -> None:
        """A workflow past its deadline cancels itself, fenced on its token. Raises
        :class:`OwnershipLostError` when this execution no longer holds it (taken over, or
        resumed under a fresh epoch)."""
        params = {"workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch}
        if self._db._execute_count("cancel_owned_past_deadline", params) == 0:
            raise ownership_lost(self._db, workflow_id, executor_id, owner_epoch)

    @contextmanager
    def holding_ownership(self, workflow_id: str, executor_id: str, owner_epoch: int) -> Iterator[DictConnection]:
        """A transaction that holds the workflow's status row FOR SHARE while this owner and
        epoch hold it: no takeover or cancel can commit until it ends. Yields its connection
        (write the step's checkpoint on it, so it commits as the lock is released). Raises
        :class:`OwnershipLostError` when ownership is already lost; not retried."""
        with self._db.transaction() as conn:
            params = {"workflow_id": workflow_id, "executor_id": executor_id, "owner_epoch": owner_epoch}
            if not self._db._execute_on(conn, "lock_owned_workflow", params):
                raise ownership_lost(self._db, workflow_id, executor_id, owner_epoch)
            yield conn


class _HeldByAnother(Exception):
    """Rolls back an enqueue whose id another workflow holds (see ``Workflows.enqueue``)."""


def _insert_enqueued(run: Callable[[str, Mapping[str, Any]], list[Row]], values: Mapping[str, Any]) -> bool:
    """Run the enqueue statement where ``run`` runs statements; whether it inserted the row."""
    return bool(run("enqueue_workflow", values))
