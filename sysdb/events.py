"""The door to workflow events (``dbos.workflow_events``: ``DBOS.set_event``/``get_event``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .channels import EVENTS_CHANNEL
from .door import Door
from .fencing import with_own_step

if TYPE_CHECKING:
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
        params = {
            "workflow_id": step.workflow_id,
            "key": key,
            "value": value,
            "serialization": serialization,
            "function_id": step.function_id,
        }

        def run() -> None:
            with self._db.pooled() as conn, conn.transaction():
                self._db.steps.record(step, connection=conn)
                self._db._execute_on(conn, "upsert_workflow_event", params)
                self._db.notify_on(conn, EVENTS_CHANNEL, f"{step.workflow_id}::{key}")

        with_own_step(self._db, run, step, lambda _recorded: None)

    def get(self, workflow_id: str, key: str) -> EventValue | None:
        """The latest value of the workflow's event ``key`` (None: not set)."""
        rows = self._execute("get_workflow_event", {"workflow_id": workflow_id, "key": key})
        return EventValue(**rows[0]) if rows else None
