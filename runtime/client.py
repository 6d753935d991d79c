"""``DBOSClient``: enqueue and inspect workflows from a process that runs none.

A web server, a script or another service uses it to put work on the fleet's queues and to
follow it, with DBOS's names and signatures. It needs only the system database URL; the
workflow functions live in the executors.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, TypedDict

from sysdb import SystemDatabase, resolve_system_database_url
from sysdb.errors import DeduplicatedError, SystemDatabaseError

from .aio import AsyncWork
from .client_admin import ClientAdminAPI
from .client_async import ClientAsyncAPI, warn_if_blocking_the_loop
from .client_async_admin import ClientAsyncAdminAPI
from .client_messaging import ClientMessagingAPI
from .client_queues import ClientQueuesAPI
from .client_schedules import ClientSchedulesAPI
from .context import WorkflowContext
from .current import current_process
from .enqueue_options import check_enqueue_options, check_option_keys
from .errors import DBOSDatabaseUnavailableError, DBOSException, DBOSNonExistentWorkflowError, DBOSQueueDeduplicatedError
from .handles import WorkflowHandle, register_client, unregister_client
from .results import await_outcome
from .serialization import deserialize, format_for, serialize_args, use_serializer
from .serializers import WorkflowSerializationFormat
from .tracing import attributes_with_carrier, option_carrier
from .workflow_start import WorkflowStart

__all__ = ["DBOSClient", "EnqueueOptions"]


class EnqueueOptions(TypedDict, total=False):
    """What ``DBOSClient.enqueue`` needs: ``workflow_name`` and ``queue_name`` are required."""

    workflow_name: str
    queue_name: str
    workflow_id: str
    app_version: str
    workflow_timeout: float
    deduplication_id: str
    duplication_policy: str  # "reject" (the default) or "return-existing"
    priority: int
    queue_partition_key: str
    delay_seconds: float
    authenticated_user: str
    authenticated_roles: list[str]
    workflow_class_name: str
    workflow_config_name: str
    serialization_type: WorkflowSerializationFormat
    # DBOS's names for the class and configured instance (pgfleet also takes the two above).
    class_name: str
    instance_name: str
    attributes: dict[str, Any]
    application_name: str | None
    max_recovery_attempts: int  # accepted and not stored, as in DBOS: the decorator sets it
    # Parents the workflow's span to this OpenTelemetry context wherever it runs (its carrier
    # is recorded in the row's attributes): DBOS's client-side PropagateOtelContext.
    otel_context: Any


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


# DBOS's default serializer argument: the process's serialization (pickle unless configured).
_DEFAULT_SERIALIZER: Any = object()


def _use_client_serializer(serializer: Any) -> None:
    """A client's own serializer becomes the process's (pgfleet has one per process): refused
    when a DBOS instance of this process configured another, whose rows would then be misread."""
    process = current_process()
    configured = process.config.raw.get("serializer") if process is not None else None
    if process is not None and configured is not serializer:
        raise DBOSException(
            "pgfleet has one serializer per process: this DBOSClient's serializer differs from the "
            "one DBOS(config=...) configured here; configure the same object in both"
        )
    use_serializer(serializer)


class DBOSClient(
    ClientAdminAPI, ClientMessagingAPI, ClientSchedulesAPI, ClientQueuesAPI, ClientAsyncAPI, ClientAsyncAdminAPI
):
    """A connection to the fleet's system database for enqueueing and inspecting workflows.

    The parameters are DBOS's. ``database_url`` (deprecated in DBOS) names the system database
    here; ``system_database_engine`` is used for its URL only (pgfleet talks psycopg, not
    SQLAlchemy); ``lazy=True`` connects at first use (``check_connection()`` checks at once);
    ``retry_connection_errors=False`` makes a lost connection raise instead of being retried.
    ``system_database_polling_concurrency`` and ``use_listen_notify`` are accepted: pgfleet's
    client polls with a backoff and needs neither."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        system_database_url: str | None = None,
        system_database_engine: Any = None,
        application_database_url: str | None = None,
        dbos_system_schema: str = "dbos",
        serializer: Any = _DEFAULT_SERIALIZER,
        system_database_pool_size: int | None = None,
        system_database_polling_concurrency: int | None = None,
        use_listen_notify: bool = False,
        application_name: str | None = None,
        lazy: bool = False,
        retry_connection_errors: bool = True,
    ) -> None:
        if lazy and use_listen_notify:
            raise DBOSException(
                "A DBOSClient cannot be both lazy and use_listen_notify: the notification listener connects immediately."
            )
        if dbos_system_schema != "dbos":
            raise DBOSException("pgfleet keeps its system tables in schema 'dbos'")
        if serializer is not _DEFAULT_SERIALIZER:
            _use_client_serializer(serializer)
        if system_database_engine is not None:
            system_database_url = system_database_engine.url.render_as_string(hide_password=False)
        self._url = system_database_url or database_url
        self._pool_size = system_database_pool_size or 4
        self._retry = retry_connection_errors
        self._opened: SystemDatabase | None = None
        self._open_lock = threading.Lock()
        self._application_name = application_name
        self._stop = threading.Event()
        # The _async methods' database work: one thread per pool connection (threads start on use).
        self._async_work = AsyncWork(self._pool_size, "pgfleet-client-async")
        if not lazy:
            self._connect()
        register_client(self)

    def _connect(self) -> SystemDatabase:
        """Open the system database once (at construction, or at first use when lazy)."""
        with self._open_lock:
            if self._opened is None:
                try:
                    url = resolve_system_database_url(self._url)
                    db = SystemDatabase(url, pool_size=self._pool_size, application_name="pgfleet-client")
                    if not self._retry:
                        db.retry_timeout_sec = 0  # a lost connection raises at once instead of waiting
                    db.open(wait_for_server=False)  # an unreachable server fails at once, as DBOS's client does
                except SystemDatabaseError as exc:
                    raise DBOSDatabaseUnavailableError(str(exc)) from exc
                self._opened = db
            return self._opened

    @property
    def _db(self) -> SystemDatabase:
        # The client mixins read self._db: a lazy client connects on that first read.
        return self._opened if self._opened is not None else self._connect()

    @_db.setter
    def _db(self, db: SystemDatabase) -> None:
        self._opened = db

    # The handle's view of its source of results (handles.ResultSource; an Executor offers the same).
    @property
    def db(self) -> SystemDatabase:
        return self._db

    def _sysdb(self) -> SystemDatabase:
        return self._db

    @property
    def async_work(self) -> AsyncWork:
        """The worker threads of this client's ``_async`` methods (and of its async handles)."""
        return self._async_work

    def check_connection(self) -> None:
        """Check that the system database answers (connecting first if the client is lazy);
        raises ``DBOSDatabaseUnavailableError`` if it does not."""
        warn_if_blocking_the_loop("check_connection")
        db = self._db
        try:
            db.probe.schema()
        except Exception as exc:  # the driver's OperationalError, a refused login ...
            raise DBOSDatabaseUnavailableError(f"the system database does not answer: {exc}") from exc

    def recorded_call(self, function_name: str, thunk: Any) -> Any:
        return thunk()

    def child_result(self, parent: WorkflowContext, workflow_id: str) -> Any:
        return self.wait_result(workflow_id)

    def wait_result(self, workflow_id: str, timeout_sec: float | None = None) -> Any:
        """Poll until the workflow finishes; return its result or raise its error."""
        return await_outcome(self._db, workflow_id, timeout_sec, self._stop)

    # -- the API -------------------------------------------------------------------------------

    def enqueue(self, options: EnqueueOptions, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """Put workflow ``options['workflow_name']`` on queue ``options['queue_name']``; with
        ``duplication_policy="return-existing"``, a held deduplication id returns its holder."""
        start = self._checked_start(options, args, kwargs)
        for _ in range(10):  # "return-existing" tries again if the holder finished meanwhile
            try:
                self._db.workflows.enqueue(start.new_workflow(), start.queue_placement())
            except DeduplicatedError as exc:
                if options.get("duplication_policy") != "return-existing":
                    raise DBOSQueueDeduplicatedError(start.workflow_id, options["queue_name"], exc.deduplication_id) from None
                holder = self._db.queue_rows.deduplication_holder(options["queue_name"], exc.deduplication_id)
                if holder is not None:
                    return WorkflowHandle(holder, source=self)
                continue
            self._db.claims.wake_queue(options["queue_name"])
            return WorkflowHandle(start.workflow_id, source=self)
        raise DBOSQueueDeduplicatedError(start.workflow_id, options["queue_name"], options.get("deduplication_id") or "")

    def _checked_start(self, options: EnqueueOptions, args: tuple[Any, ...], kwargs: dict[str, Any]) -> WorkflowStart:
        """The enqueued row, once the options are checked (``enqueue``, ``enqueue_in_transaction``)."""
        check_option_keys(options)
        check_enqueue_options(options)
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
            class_name=options.get("class_name") or options.get("workflow_class_name"),
            config_name=options.get("instance_name") or options.get("workflow_config_name"),
            authenticated_user=options.get("authenticated_user"),
            authenticated_roles=options.get("authenticated_roles"),
            application_version=options.get("app_version"),
            application_name=options.get("application_name") or self._application_name,
            timeout_ms=int(timeout * 1000) if timeout else None,
            attributes=_attributes(options),
        ).queued(
            options["queue_name"],
            delay_sec=float(options.get("delay_seconds") or 0),
            db_now_ms=self._db.clock.now_ms,
            deduplication_id=options.get("deduplication_id"),
            priority=options.get("priority") or 0,
            queue_partition_key=options.get("queue_partition_key"),
        )

    def retrieve_workflow(self, workflow_id: str, *, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        """A handle on a workflow (raises if it does not exist and ``existing_workflow``)."""
        if existing_workflow and self._db.workflows.status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandle(workflow_id, source=self)

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
        """Close the client's connections and its worker threads; waits in progress (sync or
        async) end with a DBOSException."""
        self._stop.set()
        unregister_client(self)
        if self._opened is not None:
            self._opened.close()
        # Not cancelling queued calls: each then fails on the closed pool and its awaiting task
        # gets the client's error, where a cancelled future would look like a cancelled task.
        self._async_work.pool.shutdown(wait=False, cancel_futures=False)


def _attributes(options: EnqueueOptions) -> dict[str, Any] | None:
    """The options' attributes, with the trace carrier of their ``otel_context`` (DBOS's
    client-side ``PropagateOtelContext``) recorded under ``dbos.otelContext``."""
    return attributes_with_carrier(options.get("attributes"), option_carrier(options.get("otel_context")))
