"""``DBOSClient``: enqueue and inspect workflows from a process that runs none.

A web server, a script or another service uses it to put work on the fleet's queues and to
follow it, with DBOS's names and signatures. It needs only the system database URL; the
workflow functions live in the executors.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any, TypedDict

from sysdb import SystemDatabase, resolve_system_database_url
from sysdb.errors import DeduplicatedError, SystemDatabaseError

from .client_messaging import ClientMessagingAPI
from .client_schedules import ClientSchedulesAPI
from .context import WorkflowContext, check_priority
from .errors import DBOSDatabaseUnavailableError, DBOSException, DBOSNonExistentWorkflowError, DBOSQueueDeduplicatedError
from .handles import WorkflowHandle, WorkflowHandleAsync
from .results import await_outcome
from .serialization import deserialize, format_for, serialize_args
from .serializers import WorkflowSerializationFormat
from .status import StepInfo, WorkflowStatus, step_from_row
from .workflow_start import WorkflowStart
from .workflows_admin import cancel_workflow, fork_workflow, list_workflows, resume_workflow

__all__ = ["DBOSClient", "EnqueueOptions"]


class EnqueueOptions(TypedDict, total=False):
    """What ``DBOSClient.enqueue`` needs: ``workflow_name`` and ``queue_name`` are required."""

    workflow_name: str
    queue_name: str
    workflow_id: str
    app_version: str
    workflow_timeout: float
    deduplication_id: str
    priority: int
    queue_partition_key: str
    delay_seconds: float
    authenticated_user: str
    authenticated_roles: list[str]
    workflow_class_name: str
    workflow_config_name: str
    serialization_type: WorkflowSerializationFormat


_KNOWN_OPTIONS = frozenset(EnqueueOptions.__annotations__)


def _check_partition_key(db: SystemDatabase, queue_name: str, key: str | None) -> None:
    """Reject a partition key the queue cannot serve, as ``Queue.enqueue`` does in an executor:
    claimers of a partitioned queue only claim keyed work and the others only unkeyed work, so
    such a workflow would wait forever. The queue's shape comes from the live members that
    declare it; a queue nobody declares yet is accepted (its first executor decides)."""
    declared = [q for q in db.claims.definitions() if q.name == queue_name]
    if not declared:
        return
    if declared[0].partition_queue and key is None:
        raise DBOSException(f"queue {queue_name!r} is partitioned: enqueue with a queue_partition_key")
    if not declared[0].partition_queue and key is not None:
        raise DBOSException(f"queue {queue_name!r} is not partitioned; queue_partition_key is not allowed")


class DBOSClient(ClientMessagingAPI, ClientSchedulesAPI):
    """A connection to the fleet's system database for enqueueing and inspecting workflows."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        system_database_url: str | None = None,
        application_database_url: str | None = None,
        dbos_system_schema: str = "dbos",
        application_name: str | None = None,
        system_database_pool_size: int | None = None,
    ) -> None:
        if dbos_system_schema != "dbos":
            raise DBOSException("pgfleet keeps its system tables in schema 'dbos'")
        try:
            url = resolve_system_database_url(system_database_url or database_url)
            self._db = SystemDatabase(url, pool_size=system_database_pool_size or 4, application_name="pgfleet-client")
            self._db.open(wait_for_server=False)  # an unreachable server fails at once, as DBOS's client does
        except SystemDatabaseError as exc:
            raise DBOSDatabaseUnavailableError(str(exc)) from exc
        self._application_name = application_name
        self._stop = threading.Event()

    # The handle's view of its source of results (handles.ResultSource; an Executor offers the same).
    @property
    def db(self) -> SystemDatabase:
        return self._db

    def recorded_call(self, function_name: str, thunk: Any) -> Any:
        return thunk()

    def child_result(self, parent: WorkflowContext, workflow_id: str) -> Any:
        return self.wait_result(workflow_id)

    def wait_result(self, workflow_id: str, timeout_sec: float | None = None) -> Any:
        """Poll until the workflow finishes; return its result or raise its error."""
        return await_outcome(self._db, workflow_id, timeout_sec, self._stop)

    # -- the API -------------------------------------------------------------------------------

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Put workflow ``options['workflow_name']`` on queue ``options['queue_name']``."""
        start = self._checked_start(options, args, kwargs)
        workflow_id = start.workflow_id
        try:
            self._db.workflows.enqueue(start.new_workflow(), start.queue_placement())
        except DeduplicatedError as exc:
            raise DBOSQueueDeduplicatedError(workflow_id, options["queue_name"], exc.deduplication_id) from None
        self._db.claims.wake_queue(options["queue_name"])
        return WorkflowHandle(self, workflow_id)

    def _checked_start(self, options: EnqueueOptions, args: tuple[Any, ...], kwargs: dict[str, Any]) -> WorkflowStart:
        """The enqueued row, once the options are checked (``enqueue``, ``enqueue_in_transaction``)."""
        unknown = set(options) - _KNOWN_OPTIONS
        if unknown:
            raise DBOSException(f"unknown EnqueueOptions key(s): {', '.join(sorted(unknown))}")
        for required in ("workflow_name", "queue_name"):
            if not options.get(required):
                raise DBOSException(f"EnqueueOptions needs {required!r}")
        check_priority(options.get("priority"), DBOSException)
        _check_partition_key(self._db, options["queue_name"], options.get("queue_partition_key"))
        return self._start(options, args, kwargs)

    def _start(self, options: EnqueueOptions, args: tuple[Any, ...], kwargs: dict[str, Any]) -> WorkflowStart:
        """The enqueued row: what the options name, no parent, no deadline until it is dequeued."""
        timeout = options.get("workflow_timeout")
        fmt = format_for(options.get("serialization_type"))
        return WorkflowStart(
            workflow_id=options.get("workflow_id") or str(uuid.uuid4()),
            name=options["workflow_name"],
            inputs=serialize_args(args, kwargs, workflow_name=options["workflow_name"], fmt=fmt),
            serialization=fmt,
            class_name=options.get("workflow_class_name"),
            config_name=options.get("workflow_config_name"),
            authenticated_user=options.get("authenticated_user"),
            authenticated_roles=options.get("authenticated_roles"),
            application_version=options.get("app_version"),
            application_name=self._application_name,
            timeout_ms=int(timeout * 1000) if timeout else None,
        ).queued(
            options["queue_name"],
            delay_sec=float(options.get("delay_seconds") or 0),
            db_now_ms=self._db.clock.now_ms,
            deduplication_id=options.get("deduplication_id"),
            priority=options.get("priority") or 0,
            queue_partition_key=options.get("queue_partition_key"),
        )

    async def enqueue_async(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandleAsync[Any]:
        return WorkflowHandleAsync(await asyncio.to_thread(self.enqueue, options, *args, **kwargs))

    def retrieve_workflow(self, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        """A handle on a workflow (raises if it does not exist and ``existing_workflow``)."""
        if existing_workflow and self._db.workflows.status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandle(self, workflow_id)

    def list_workflows(self, **filters: Any) -> list[WorkflowStatus]:
        return list_workflows(self._db, **filters)

    def list_queued_workflows(self, **filters: Any) -> list[WorkflowStatus]:
        return list_workflows(self._db, queues_only=True, **filters)

    def list_workflow_steps(self, workflow_id: str) -> list[StepInfo]:
        return [step_from_row(r) for r in self._db.steps.list_recorded(workflow_id)]

    def cancel_workflow(self, workflow_id: str) -> None:
        cancel_workflow(self._db, workflow_id)

    def resume_workflow(self, workflow_id: str, *, queue_name: str | None = None) -> WorkflowHandle[Any]:
        """Send a cancelled or dead-lettered workflow back to work: any executor resumes it
        from its first unfinished step (through ``queue_name``, by default the internal queue)."""
        resume_workflow(self._db, workflow_id, queue_name=queue_name)
        return WorkflowHandle(self, workflow_id)

    def fork_workflow(self, workflow_id: str, start_step: int, *, application_version: str | None = None) -> WorkflowHandle[Any]:
        """Run a copy of a workflow from ``start_step`` on any executor (see ``DBOS.fork_workflow``)."""
        return WorkflowHandle(self, fork_workflow(self._db, workflow_id, start_step, application_version=application_version))

    def get_event(self, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of a workflow's event, polling up to ``timeout_seconds`` for it."""
        deadline = time.monotonic() + timeout_seconds
        interval = 0.01
        while True:
            row = self._db.events.get(workflow_id, key)
            if row is not None:
                return deserialize(row.value, row.serialization, what=f"event {key!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._stop.wait(min(interval, remaining))
            interval = min(interval * 2, 0.5)

    def destroy(self) -> None:
        """Close the client's connections."""
        self._stop.set()
        self._db.close()
