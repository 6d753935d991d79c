"""``DBOSClient``'s messaging and streams API: ``send`` and ``send_bulk`` (also inside the
caller's own database transaction), ``enqueue_in_transaction``, ``read_stream`` and
``wait_first`` (a mixin of :class:`runtime.client.DBOSClient`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sysdb.errors import DeduplicatedError, NoSuchWorkflowError
from sysdb.messages import NewMessage

from . import streams, waiting
from .caller_transactions import caller_transaction
from .errors import DBOSException, DBOSNonExistentWorkflowError, DBOSQueueDeduplicatedError
from .handles import WorkflowHandle
from .messages import SendMessage, message_format, new_messages
from .serializers import WorkflowSerializationFormat

if TYPE_CHECKING:
    from sysdb import SystemDatabase

    from .workflow_start import WorkflowStart

__all__ = ["ClientMessagingAPI"]


def _client_stopped() -> BaseException:
    return DBOSException("the DBOSClient was destroyed while waiting")


class ClientMessagingAPI:
    """Messages, streams and transactional enqueues of ``DBOSClient``."""

    _db: SystemDatabase
    _stop: threading.Event

    def _checked_start(self, options: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> WorkflowStart:
        raise NotImplementedError  # DBOSClient's

    def _rows(self, messages: list[SendMessage], serialization_type: Any, send_to_forks: bool) -> list[NewMessage]:
        return new_messages(messages, message_format(serialization_type, None), send_to_forks)

    def _send(self, rows: list[NewMessage], conn_or_session: Any = None, what: str = "") -> None:
        try:
            if conn_or_session is None:
                self._db.messages.send(rows)
            else:
                self._db.messages.send_in(caller_transaction(conn_or_session, what), rows)
        except NoSuchWorkflowError as exc:
            raise DBOSNonExistentWorkflowError("`send` destination", exc.workflow_id) from None

    def send(
        self,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """Send a message to a workflow (``idempotency_key`` makes a retried send deliver once;
        ``send_to_forks`` also delivers it to the destination's forks)."""
        self._send(self._rows([SendMessage(destination_id, message, topic, idempotency_key)], serialization_type, send_to_forks))

    def send_bulk(
        self,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """Send many messages in one transaction."""
        self._send(self._rows(messages, serialization_type, send_to_forks))

    def send_in_transaction(
        self,
        conn_or_session: Any,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        idempotency_key: str | None = None,
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """Send a message inside the caller's transaction on the system database
        (``conn_or_session``: a SQLAlchemy Connection or Session, or a psycopg connection): the
        destination sees it once that transaction commits; the caller commits or rolls back."""
        rows = self._rows([SendMessage(destination_id, message, topic, idempotency_key)], serialization_type, send_to_forks)
        self._send(rows, conn_or_session, "send_in_transaction")

    def send_bulk_in_transaction(
        self,
        conn_or_session: Any,
        messages: list[SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """``send_bulk`` inside the caller's transaction (see ``send_in_transaction``)."""
        self._send(self._rows(messages, serialization_type, send_to_forks), conn_or_session, "send_bulk_in_transaction")

    def enqueue_in_transaction(self, conn_or_session: Any, options: Any, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """``enqueue`` inside the caller's transaction on the system database: the workflow is
        queued once that transaction commits (its handle is no use before)."""
        if options.get("duplication_policy") == "return-existing":
            # DBOS's text: attaching to the existing workflow would retry inside an aborted transaction.
            raise DBOSException(
                "duplication_policy 'return-existing' is not supported by enqueue_in_transaction. Use enqueue instead."
            )
        start = self._checked_start(options, args, kwargs)
        caller = caller_transaction(conn_or_session, "enqueue_in_transaction")
        try:
            self._db.workflows.enqueue_in(caller, start.new_workflow(), start.queue_placement())
        except DeduplicatedError as exc:
            raise DBOSQueueDeduplicatedError(start.workflow_id, options["queue_name"], exc.deduplication_id) from None
        return WorkflowHandle(start.workflow_id, source=self)  # type: ignore[arg-type]  # DBOSClient is a ResultSource

    def read_stream(self, workflow_id: str, key: str, *, offset: int = 0) -> Iterator[Any]:
        """Yield a workflow's stream values in order from ``offset`` until the stream is closed
        or the workflow ends (nothing for a workflow that does not exist)."""
        return streams.read_stream(self, workflow_id, key, offset=offset, stop=self._stop, must_exist=False)

    def wait_first(
        self, handles: list[WorkflowHandle[Any]], *, polling_interval_sec: float = waiting.DEFAULT_POLLING_INTERVAL_SEC
    ) -> WorkflowHandle[Any]:
        """Wait until one of the handles' workflows finishes and return its handle."""
        return waiting.wait_first(self, handles, polling_interval_sec, self._stop, _client_stopped)  # type: ignore[arg-type]
