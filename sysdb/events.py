"""The door to workflow events (``dbos.workflow_events``: ``DBOS.set_event``/``get_event``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .channels import EVENTS_CHANNEL
from .door import Door
from .fencing import with_own_step

if TYPE_CHECKING:
    from .database import DictConnection
    from .messages import WorkflowOwner
    from .steps import StepRecord

__all__ = ["Events", "EventValue"]


@dataclass(frozen=True)
class EventValue:
    """The latest value of an event, as stored (serialized)."""

    value: str
    serialization: str | None


class Events(Door):
    """Publish a workflow's events and read them."""

    def set(self, key: str, value: str, serialization: str | None, step: StepRecord) -> None:
        """Publish ``value`` under ``key`` for ``step``'s workflow and checkpoint the set (the
        fenced ``step``), in one transaction; readers waiting on the event are woken."""

        def run() -> None:
            with self._db.pooled() as conn, conn.transaction():
                self._db.steps.record(step, connection=conn)
                self._publish(conn, step.workflow_id, step.function_id, key, value, serialization)

        with_own_step(self._db, run, step, lambda _recorded: None)

    def set_from_step(self, owner: WorkflowOwner, function_id: int, key: str, value: str, serialization: str | None) -> None:
        """Publish an event from inside the step at ``function_id`` (no step row of its own, as
        in DBOS): it commits only while ``owner`` still holds the workflow, else raises
        :class:`OwnershipLostError`. Setting the same value again is harmless, so a retry is too."""

        def run() -> None:
            with self._db.workflows.holding_ownership(owner.workflow_id, owner.executor_id, owner.owner_epoch) as conn:
                self._publish(conn, owner.workflow_id, function_id, key, value, serialization)

        self._db.with_retries(run)

    def _publish(
        self, conn: DictConnection, workflow_id: str, function_id: int, key: str, value: str, serialization: str | None
    ) -> None:
        params = {
            "workflow_id": workflow_id,
            "key": key,
            "value": value,
            "serialization": serialization,
            "function_id": function_id,
        }
        self._db._execute_on(conn, "upsert_workflow_event", params)
        self._db.notify_on(conn, EVENTS_CHANNEL, f"{workflow_id}::{key}")

    def get(self, workflow_id: str, key: str) -> EventValue | None:
        """The latest value of the workflow's event ``key`` (None: not set)."""
        rows = self._execute("get_workflow_event", {"workflow_id": workflow_id, "key": key})
        return EventValue(**rows[0]) if rows else None

    def all(self, workflow_id: str) -> dict[str, EventValue]:
        """Every event the workflow has set, by key, with its latest value."""
        rows = self._execute("list_workflow_events", {"workflow_id": workflow_id})
        return {row["key"]: EventValue(value=row["value"], serialization=row["serialization"]) for row in rows}
