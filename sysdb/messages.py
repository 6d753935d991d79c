"""The door to messages between workflows (``dbos.notifications``: ``DBOS.send``/``recv``).

From inside a workflow a send commits with the sender's fenced step row, and a receive consumes
its message in the same transaction as its checkpoint, so a fenced owner consumes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import psycopg

from .door import Door
from .errors import NoSuchWorkflowError
from .fencing import with_own_step

if TYPE_CHECKING:
    from .steps import StepRecord, StepRow

__all__ = ["Messages", "NewMessage", "Message"]


@dataclass(frozen=True)
class NewMessage:
    """A message to send: ``message_uuid`` makes a retried send deliver it once."""

    destination_id: str
    topic: str
    message: str
    serialization: str | None
    message_uuid: str


@dataclass(frozen=True)
class Message:
    """A received message, as stored (serialized)."""

    message: str
    serialization: str | None


class Messages(Door):
    """Send, look for and consume messages."""

    def send(self, message: NewMessage, parent_step: StepRecord | None = None) -> None:
        """Insert a message; with ``parent_step`` (a send from inside a workflow) the sender's
        fenced step row commits with it. Raises :class:`NoSuchWorkflowError` for an unknown
        destination and :class:`OwnershipLostError` when the sender lost its workflow."""
        params = dict(vars(message))

        def run() -> None:
            with self._db.pooled() as conn, conn.transaction():
                if parent_step is not None:
                    self._db.steps.record(parent_step, connection=conn)
                self._db._execute_on(conn, "insert_notification", params)

        try:
            with_own_step(self._db, run, parent_step, lambda _recorded: None)
        except psycopg.errors.ForeignKeyViolation:
            raise NoSuchWorkflowError(message.destination_id) from None

    def has(self, destination_id: str, topic: str) -> bool:
        """Whether a message waits for ``destination_id`` on ``topic``."""
        rows = self._execute("has_notification", {"destination_id": destination_id, "topic": topic})
        return bool(rows and rows[0]["waiting"])

    def consume(self, destination_id: str, topic: str, step: StepRecord) -> Message | None:
        """Consume the oldest waiting message and checkpoint the receive, in one transaction.

        ``step`` is the fenced checkpoint; its ``output`` is filled in from the message
        (``None`` when there is none). Returns the message or ``None``.
        """

        def run() -> Message | None:
            with self._db.pooled() as conn, conn.transaction():
                rows = self._db._execute_on(conn, "consume_notification", {"destination_id": destination_id, "topic": topic})
                message = Message(**rows[0]) if rows else None
                received = replace(
                    step,
                    output=message.message if message else None,
                    serialization=message.serialization if message else step.serialization,
                )
                self._db.steps.record(received, connection=conn)
                return message

        def recorded_message(recorded: StepRow) -> Message | None:
            if recorded.output is None:  # the receive found nothing
                return None
            return Message(message=recorded.output, serialization=recorded.serialization)

        return with_own_step(self._db, run, step, recorded_message)
