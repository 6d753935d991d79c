"""The door to messages between workflows (``dbos.notifications``: ``DBOS.send``/``recv``).

From inside a workflow a send commits with the sender's fenced step row, and a receive consumes
its message in the same transaction as its checkpoint, so a fenced owner consumes nothing. A
send from inside a step (or a transaction) has no step row of its own: it commits while its
workflow's status row is held for its owner (:class:`WorkflowOwner`), so a lost owner sends
nothing. ``send_in`` writes into a transaction the caller owns (``DBOSClient.send_in_transaction``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import psycopg

from .caller import CallerTransaction, _run_in, is_foreign_key_violation
from .door import Door
from .errors import NoSuchWorkflowError
from .fencing import with_own_step

if TYPE_CHECKING:
    from .database import Row
    from .steps import StepRecord, StepRow

__all__ = ["Messages", "NewMessage", "Message", "WorkflowOwner"]

# Runs one named statement where the send happens (a pooled transaction or the caller's).
_Runner = Callable[[str, Mapping[str, Any]], "list[Row]"]


@dataclass(frozen=True)
class NewMessage:
    """A message to send: ``message_uuid`` makes a retried send deliver it once. With
    ``fork_key`` it is also delivered to every workflow forked (recursively) from its
    destination, each copy under the id ``<fork_key>::<fork id>``."""

    destination_id: str
    topic: str
    message: str
    serialization: str | None
    message_uuid: str
    fork_key: str | None = None


@dataclass(frozen=True)
class WorkflowOwner:
    """The running workflow a write belongs to, and the owner token it must still hold."""

    workflow_id: str
    executor_id: str
    owner_epoch: int


@dataclass(frozen=True)
class Message:
    """A received message, as stored (serialized)."""

    message: str
    serialization: str | None


def _missing(messages: Sequence[NewMessage]) -> NoSuchWorkflowError:
    # As DBOS: a send that names a workflow that does not exist names all its destinations.
    return NoSuchWorkflowError(", ".join(sorted({m.destination_id for m in messages})))


class Messages(Door):
    """Send, look for and consume messages."""

    def send(
        self, messages: Sequence[NewMessage], parent_step: StepRecord | None = None, *, owner: WorkflowOwner | None = None
    ) -> None:
        """Insert messages in one transaction; with ``parent_step`` (a send from a workflow body)
        the sender's fenced step row commits with them, with ``owner`` (a send from inside a
        step) they commit only while ``owner`` still holds its workflow. Raises
        :class:`NoSuchWorkflowError` for an unknown destination and :class:`OwnershipLostError`
        when the sender lost its workflow."""

        def run() -> None:
            if owner is not None:
                with self._db.workflows.holding_ownership(owner.workflow_id, owner.executor_id, owner.owner_epoch) as conn:
                    self._insert(lambda name, params: self._db._execute_on(conn, name, params), messages)
                return
            with self._db.pooled() as conn, conn.transaction():
                if parent_step is not None:
                    self._db.steps.record(parent_step, connection=conn)
                self._insert(lambda name, params: self._db._execute_on(conn, name, params), messages)

        try:
            with_own_step(self._db, run, parent_step, lambda _recorded: None)
        except psycopg.errors.ForeignKeyViolation:
            raise _missing(messages) from None

    def send_in(self, caller: CallerTransaction, messages: Sequence[NewMessage]) -> None:
        """Insert messages inside the caller's own transaction (delivered when it commits).
        Raises :class:`NoSuchWorkflowError` for an unknown destination (the caller's
        transaction is then aborted, as any failed statement leaves it)."""
        try:
            self._insert(lambda name, params: _run_in(caller, name, params), messages)
        except Exception as exc:
            if is_foreign_key_violation(exc):
                raise _missing(messages) from None
            raise

    @staticmethod
    def _insert(run: _Runner, messages: Sequence[NewMessage]) -> None:
        """Insert each message, and its copies to its destination's forks when it asks for them."""
        roots = sorted({m.destination_id for m in messages if m.fork_key is not None})
        forks: dict[str, list[str]] = {}
        if roots:
            for row in run("list_fork_descendants", {"workflow_ids": roots}):
                forks.setdefault(row["root"], []).append(row["descendant"])
        for message in messages:
            copies = [message]
            if message.fork_key is not None:
                copies += [
                    replace(message, destination_id=fork, message_uuid=f"{message.fork_key}::{fork}")
                    for fork in forks.get(message.destination_id, [])
                ]
            for copy in copies:
                params = dict(vars(copy))
                del params["fork_key"]
                run("insert_notification", params)

    def has(self, destination_id: str, topic: str) -> bool:
        """Whether a message waits for ``destination_id`` on ``topic``."""
        rows = self._execute("has_notification", {"destination_id": destination_id, "topic": topic})
        return bool(rows and rows[0]["waiting"])

    def consume(self, destination_id: str, topic: str, step: StepRecord) -> Message | None:
        """Consume the oldest waiting message and checkpoint the receive, in one transaction.

        ``step`` is the fenced checkpoint; its ``output`` is replaced by the message's (kept,
        as the caller's serialized "nothing", when there is none). Returns the message or ``None``.
        """

        def run() -> Message | None:
            with self._db.pooled() as conn, conn.transaction():
                rows = self._db._execute_on(conn, "consume_notification", {"destination_id": destination_id, "topic": topic})
                message = Message(**rows[0]) if rows else None
                received = replace(
                    step,
                    output=message.message if message else step.output,
                    serialization=message.serialization if message else step.serialization,
                )
                self._db.steps.record(received, connection=conn)
                return message

        def recorded_message(recorded: StepRow) -> Message | None:
            if recorded.output is None or recorded.output == step.output:  # the receive found nothing
                return None
            return Message(message=recorded.output, serialization=recorded.serialization)

        return with_own_step(self._db, run, step, recorded_message)
