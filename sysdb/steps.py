"""The door to step rows (``dbos.operation_outputs``) and ``@DBOS.transaction`` outputs.

A step's checkpoint is one fenced round trip: the row is written only while the workflow is
still owned by the writer's executor and epoch (see ``sysdb/sql/record_step_output.sql``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from .door import Door
from .errors import DuplicateCheckpointError
from .fencing import ownership_lost, with_own_step
from .timestamps import now_ms

if TYPE_CHECKING:
    from .database import DictConnection

__all__ = ["Steps", "StepRecord", "StepRow", "TransactionOutputRow"]


@dataclass(frozen=True)
class StepRecord:
    """One operation's checkpoint, as a fenced write records it: the owner's token (executor
    and epoch), the step's position and name, and its outcome (serialized text)."""

    workflow_id: str
    executor_id: str
    owner_epoch: int
    function_id: int
    function_name: str
    started_at_ms: int
    output: str | None = None
    error: str | None = None
    serialization: str | None = None
    child_workflow_id: str | None = None
    # None: the moment it is recorded.
    completed_at_ms: int | None = None


@dataclass(frozen=True)
class StepRow:
    """A recorded step: its outcome as stored (serialized), and when it ran."""

    function_id: int
    function_name: str
    output: str | None
    error: str | None
    child_workflow_id: str | None = None
    serialization: str | None = None
    started_at_epoch_ms: int | None = None
    completed_at_epoch_ms: int | None = None


@dataclass(frozen=True)
class TransactionOutputRow:
    """A ``@DBOS.transaction`` output committed in the application database."""

    output: str | None
    error: str | None
    function_name: str


class Steps(Door):
    """Checkpoints of workflow operations: write one (fenced), read them back for a replay."""

    def record(self, step: StepRecord, *, connection: DictConnection | None = None) -> None:
        """Checkpoint one step in one fenced round trip.

        With ``connection`` (inside an open transaction) the checkpoint commits or rolls back
        together with that transaction's own writes, and is not retried here.

        Raises :class:`OwnershipLostError` when this owner/epoch no longer holds the workflow,
        and :class:`DuplicateCheckpointError` when the position was recorded by someone else.
        """
        params = dict(vars(step))  # a flat copy (asdict would deep-copy every value)
        if step.completed_at_ms is None:
            params["completed_at_ms"] = now_ms()
        if connection is not None:
            if self._db._execute_on_count(connection, "record_step_output", params) == 0:
                raise ownership_lost(self._db, step.workflow_id, step.executor_id, step.owner_epoch, connection)
            return

        def run() -> int:
            with self._db.pooled() as conn:
                return self._db._execute_on_count(conn, "record_step_output", params)

        try:
            # A retry after a lost reply that finds its own earlier write: success (its one row).
            written = with_own_step(self._db, run, step, lambda _recorded: 1)
        except psycopg.errors.UniqueViolation:
            recorded = self.get(step.workflow_id, step.function_id)
            name = recorded.function_name if recorded else "?"
            raise DuplicateCheckpointError(step.workflow_id, step.function_id, name) from None
        if written == 0:
            raise ownership_lost(self._db, step.workflow_id, step.executor_id, step.owner_epoch)

    def get(self, workflow_id: str, function_id: int) -> StepRow | None:
        """The step recorded at ``function_id`` (None when there is none)."""
        rows = self._execute("get_step_output", {"workflow_id": workflow_id, "function_id": function_id})
        return StepRow(**rows[0]) if rows else None

    def load_outputs(self, workflow_id: str) -> dict[int, StepRow]:
        """Every recorded step of a workflow by function id: read once per replay."""
        rows = self._execute("load_step_outputs", {"workflow_id": workflow_id})
        return {row["function_id"]: StepRow(**row) for row in rows}

    def list_recorded(self, workflow_id: str) -> list[StepRow]:
        """Every recorded step of a workflow, in order (``DBOS.list_workflow_steps``)."""
        return [StepRow(**row) for row in self._execute("list_workflow_steps", {"workflow_id": workflow_id})]

    def record_transaction_output(
        self, connection: DictConnection, *, workflow_id: str, function_id: int, function_name: str, executor_id: str, output: str | None
    ) -> None:
        """Record a ``@DBOS.transaction`` output in the application database, on the
        transaction's own connection: it commits with the transaction's effects or not at all."""
        self._db._execute_on(connection, "record_transaction_output", {
            "workflow_id": workflow_id, "function_id": function_id, "output": output,
            "executor_id": executor_id, "function_name": function_name, "now_ms": now_ms(),
        })

    def transaction_output(self, workflow_id: str, function_id: int) -> TransactionOutputRow | None:
        """The output a ``@DBOS.transaction`` at ``function_id`` committed (application database)."""
        rows = self._execute("get_transaction_output", {"workflow_id": workflow_id, "function_id": function_id})
        return TransactionOutputRow(**rows[0]) if rows else None
