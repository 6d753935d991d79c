"""The door to database-backed queues (``dbos.queues``, DBOS's table: ``DBOS.register_queue``).

A queue declared in code (``Queue(...)``) lives in the program; one registered here lives in
the database, and every executor of its application serves it with the limits of its row,
read inside each claim (``claim_queued_workflows.sql``), so a change holds fleet-wide at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from .door import Door, row_to

__all__ = ["QueueRows", "QueueRow", "QueueSettingsChange", "OwnedWrite", "INTERNAL_QUEUE_NAME"]

# DBOS's queue for resumed and forked workflows (and work handed back, see
# requeue_unbindable_workflow.sql); every executor serves it.
INTERNAL_QUEUE_NAME = "_dbos_internal_queue"


@dataclass(frozen=True)
class QueueRow:
    """A database-backed queue's settings, as stored."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit_max: int | None
    rate_limit_period_sec: float | None
    priority_enabled: bool
    partition_queue: bool
    polling_interval_sec: float
    application_name: str | None


@dataclass(frozen=True)
class QueueSettingsChange:
    """Which settings of a queue a setter changes (``set_X``) and to what."""

    name: str
    set_concurrency: bool = False
    concurrency: int | None = None
    set_worker_concurrency: bool = False
    worker_concurrency: int | None = None
    set_limiter: bool = False
    rate_limit_max: int | None = None
    rate_limit_period_sec: float | None = None
    set_priority_enabled: bool = False
    priority_enabled: bool | None = None
    set_partition_queue: bool = False
    partition_queue: bool | None = None
    set_polling_interval_sec: bool = False
    polling_interval_sec: float | None = None


@dataclass(frozen=True)
class OwnedWrite:
    """The outcome of a write to a row named globally but owned by an application: whether the
    row existed, who owned it before, and how many rows were written (0 when another
    application owns it, or when the caller asked not to overwrite)."""

    existed: bool
    previous_owner: str | None
    written: int


class QueueRows(Door):
    """Register, read, change and delete database-backed queues."""

    def get(self, name: str) -> QueueRow | None:
        """The queue ``name`` (None: not registered)."""
        rows = self._execute("get_queue_row", {"name": name})
        return row_to(QueueRow, rows[0]) if rows else None

    def list(self, application_names: list[str] | None) -> list[QueueRow]:
        """The queues these applications own plus the unclaimed ones (None: every queue)."""
        rows = self._execute("list_queue_rows", {"application_names": application_names})
        return [row_to(QueueRow, row) for row in rows]

    def upsert(self, row: QueueRow, *, update_existing: bool) -> OwnedWrite:
        """Insert the queue, or overwrite an existing one's settings when ``update_existing``
        (never one another application owns: see :class:`OwnedWrite`)."""
        rows = self._execute("upsert_queue_row", {**vars(row), "update_existing": update_existing})
        return row_to(OwnedWrite, rows[0])

    def update(self, change: QueueSettingsChange) -> None:
        """Change some settings of a queue (nothing when it is not registered)."""
        self._execute("update_queue_row", dict(vars(change)))

    def delete(self, name: str) -> None:
        """Delete the queue (nothing when it is not registered)."""
        self._execute("delete_queue_row", {"name": name})

    def deduplication_holder(self, queue_name: str, deduplication_id: str) -> str | None:
        """The workflow holding a live deduplication id of a queue (None: released since)."""
        rows = self._execute("find_deduplicated_workflow", {"queue_name": queue_name, "deduplication_id": deduplication_id})
        return str(rows[0]["workflow_uuid"]) if rows else None
