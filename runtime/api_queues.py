"""``DBOS``'s class methods for database-backed queues, enqueueing by name, and application
versions (a mixin of :class:`runtime.dbos.DBOS`; the logic is in :mod:`runtime.queue_admin`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from . import queue_admin
from .current import current_process, executor_for
from .enqueue import enqueue_call
from .enqueue_options import enqueue_with_options
from .executor import Executor
from .handles import WorkflowHandle
from .on_loop import refuse_on_loop
from .queue_admin import VersionInfo
from .queues import Queue, QueueConflictResolution, QueueRateLimit

__all__ = ["QueuesAPI"]

P = ParamSpec("P")
R = TypeVar("R")


def _executor(what: str) -> Executor:
    return executor_for(what)


def _queues_changed() -> None:
    """This process's claimer looks for database-backed queues again (other executors hear
    the NOTIFY the write sent, or find them at their next refresh)."""
    process = current_process()
    services = process.services if process is not None else None
    if services is not None:
        services.database_queues.invalidate()


def _serves(name: str) -> bool:
    """Whether this process serves the queue ``name`` (``DBOS.listen_queues``, config ``queues``)."""
    process = current_process()
    return process is None or process.serves_queue(name)


class QueuesAPI:
    """Database-backed queues, enqueueing by queue or workflow name, application versions."""

    @classmethod
    def register_queue(
        cls,
        name: str,
        *,
        worker_concurrency: int | None = None,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float = 1.0,
        on_conflict: QueueConflictResolution = "update_if_latest_version",
    ) -> Queue:
        """Register a queue in the system database (``dbos.queues``) and return it.

        Every executor of this application serves it (within a few seconds), with the limits
        of its row read inside each claim, so its setters change them fleet-wide.
        ``on_conflict`` decides whether an existing row is overwritten: ``"always_update"``,
        ``"never_update"``, or (the default) only when this executor runs the latest
        application version, so that old versions in a rolling deploy keep the new settings.
        """
        refuse_on_loop("DBOS.register_queue")
        executor = _executor("register_queue")
        name_ = executor.config.name
        update = queue_admin.update_if_latest(executor.db, on_conflict, name_, executor.application_version)
        queue = queue_admin.register_queue(
            executor.db, name, owner=name_, update_existing=update, concurrency=concurrency, limiter=limiter,
            worker_concurrency=worker_concurrency, priority_enabled=priority_enabled,
            partition_queue=partition_queue, polling_interval_sec=polling_interval_sec, client=False,
            listening=_serves(name),
        )
        _queues_changed()
        return queue

    @classmethod
    def retrieve_queue(cls, name: str) -> Queue | None:
        """The database-backed queue ``name`` (None: not registered); not added to the registry."""
        refuse_on_loop("DBOS.retrieve_queue")
        return queue_admin.retrieve_queue(_executor("retrieve_queue").db, name, client=False)

    @classmethod
    def delete_queue(cls, name: str) -> None:
        """Delete a database-backed queue: its claimers stop; its queued workflows stay queued."""
        refuse_on_loop("DBOS.delete_queue")
        _executor("delete_queue").db.queue_rows.delete(name)
        _queues_changed()

    @classmethod
    def list_queues(cls, *, application_name: str | list[str] | None = None) -> list[Queue]:
        """The database-backed queues of these applications (default: this one's) and the
        unclaimed ones."""
        refuse_on_loop("DBOS.list_queues")
        executor = _executor("list_queues")
        return queue_admin.list_queues(executor.db, application_name, executor.config.name, client=False)

    @classmethod
    def enqueue_workflow(cls, queue_name: str, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Enqueue a workflow on a database-backed queue by its name (the queue's settings are
        not checked here, as in DBOS: no round trip)."""
        handle: WorkflowHandle[R] = enqueue_call(Queue(queue_name, database_backed_queue=True), func, args, dict(kwargs))
        return handle

    @classmethod
    def enqueue_workflow_with_options(cls, options: Any, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Enqueue a workflow by name with DBOS's ``EnqueueOptions`` (``workflow_name`` and
        ``queue_name`` required), as ``DBOSClient.enqueue`` does, from inside an application;
        inside a workflow it is a checkpointed child. ``app_version`` stays unset unless given."""
        executor = _executor("enqueue_workflow_with_options")
        return enqueue_with_options(executor, options, args, dict(kwargs))

    @classmethod
    def list_application_versions(cls) -> list[VersionInfo]:
        """This application's versions (and the unclaimed ones), the latest first."""
        executor = _executor("list_application_versions")
        return queue_admin.list_versions(executor.db, executor.config.name)

    @classmethod
    def get_latest_application_version(cls) -> VersionInfo:
        """This application's latest version (the newest ``version_timestamp``)."""
        executor = _executor("get_latest_application_version")
        return queue_admin.latest_version(executor.db, executor.config.name)

    @classmethod
    def set_latest_application_version(cls, version_name: str, *, application_name: str | None = None) -> None:
        """Make ``version_name`` the latest (its timestamp becomes now, on the database clock).
        Promoting a version another application registered raises."""
        executor = _executor("set_latest_application_version")
        queue_admin.promote_version(executor.db, version_name, application_name or executor.config.name)
