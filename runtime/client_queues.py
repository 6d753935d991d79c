"""``DBOSClient``'s methods for database-backed queues, application versions and renaming an
application (a mixin of :class:`runtime.client.DBOSClient`; see :mod:`runtime.queue_admin`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import queue_admin
from .client_async import warn_if_blocking_the_loop
from .errors import DBOSException
from .queue_admin import DEFAULT_RENAME_BATCH_SIZE, ApplicationRowCounts, VersionInfo
from .queues import Queue, QueueConflictResolution, QueueRateLimit

if TYPE_CHECKING:
    from sysdb import SystemDatabase

__all__ = ["ClientQueuesAPI"]


class ClientQueuesAPI:
    """What a ``DBOSClient`` offers for queues and versions (needs ``_db`` and ``_application_name``)."""

    _db: SystemDatabase
    _application_name: str | None

    def register_queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float = 1.0,
        on_conflict: QueueConflictResolution = "always_update",
        application_name: str | None = None,
    ) -> Queue:
        """Register a queue in the system database from a client (owned by
        ``application_name``, by default the client's); its setters write through this client."""
        warn_if_blocking_the_loop("register_queue")
        if on_conflict not in ("always_update", "never_update"):
            raise DBOSException(
                "DBOSClient.register_queue does not support on_conflict='update_if_latest_version' because "
                "clients are not associated with an application version. Use 'always_update' or 'never_update'."
            )
        return queue_admin.register_queue(
            self._db, name, owner=application_name or self._application_name,
            update_existing=on_conflict == "always_update", concurrency=concurrency, limiter=limiter,
            worker_concurrency=worker_concurrency, priority_enabled=priority_enabled,
            partition_queue=partition_queue, polling_interval_sec=polling_interval_sec, client=True,
        )

    def retrieve_queue(self, name: str) -> Queue | None:
        """The database-backed queue ``name`` (None: not registered)."""
        warn_if_blocking_the_loop("retrieve_queue")
        return queue_admin.retrieve_queue(self._db, name, client=True)

    def delete_queue(self, name: str) -> None:
        """Delete a database-backed queue (its queued workflows stay queued)."""
        warn_if_blocking_the_loop("delete_queue")
        self._db.queue_rows.delete(name)

    def list_queues(self, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """The database-backed queues of these applications (default: the client's; every
        queue for a client without one) and the unclaimed ones."""
        warn_if_blocking_the_loop("list_queues")
        return queue_admin.list_queues(self._db, application_name, self._application_name, client=True)

    def list_application_versions(self) -> list[VersionInfo]:
        """The application versions (the client's application's, else all), the latest first."""
        return queue_admin.list_versions(self._db, self._application_name)

    def get_latest_application_version(self) -> VersionInfo:
        return queue_admin.latest_version(self._db, self._application_name)

    def set_latest_application_version(self, version_name: str, *, application_name: str | None = None) -> None:
        """Make ``version_name`` the latest (its timestamp becomes now, on the database clock)."""
        queue_admin.promote_version(self._db, version_name, application_name or self._application_name)

    def rename_application(
        self,
        old_name: str | None,
        new_name: str,
        *,
        batch_size: int | None = DEFAULT_RENAME_BATCH_SIZE,
        adopt_unclaimed_rows: bool = False,
    ) -> ApplicationRowCounts:
        """Give ``new_name`` the rows (queues, schedules, versions, workflows, steps) that
        ``old_name`` owns, and the unclaimed ones with ``adopt_unclaimed_rows``. Run it while
        the renamed application is stopped."""
        warn_if_blocking_the_loop("rename_application")
        return queue_admin.rename_application(
            self._db, old_name, new_name, batch_size=batch_size, adopt_unclaimed_rows=adopt_unclaimed_rows
        )
