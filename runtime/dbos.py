"""``DBOS``: the public API, with DBOS Transact's names and signatures.

``DBOS`` is a facade: ``DBOS(config=...)`` builds a :class:`~runtime.process.DBOSProcess` (the
executor with everything it owns) and makes it current (:mod:`runtime.current`); the class
methods act on it, or, inside a workflow, on the executor running the workflow. The decorators
register into :data:`runtime.registry.registry`, so they work before ``DBOS()`` is created and
after ``launch()``. Follow a workflow from here: ``workflow()`` → the wrapper in
:mod:`runtime.decorators` → ``starts.start_workflow`` → ``Executor.run`` → (the body calls a
step) ``steps.run_step`` → ``Executor.checkpoint`` → ``db.steps.record`` (``sysdb/steps.py``) → ``sysdb/sql/record_step_output.sql``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

from cluster.coordination.status import FleetStatus, fleet_status

from . import decorators, logs, messages, otlp, otlp_logs, streams
from .api_admin import AdminAPI
from .api_async import AsyncAPI
from .api_async_admin import AsyncAdminAPI
from .api_async_messaging import AsyncMessagingAPI
from .api_async_queues import AsyncQueuesAPI
from .api_async_waits import AsyncWaitsAPI
from .api_context import ContextAPI
from .api_messaging import MessagingAPI
from .api_queues import QueuesAPI
from .api_schedules import SchedulesAPI
from .api_versioning import VersioningAPI
from .config import DBOSConfig, ResolvedConfig, resolve_config
from .context import DBOSContext, current_workflow
from .current import current_process, executor_for, make_current, not_launched
from .dbos_properties import DBOSProperties
from .errors import DBOSException, DBOSNonExistentWorkflowError
from .executor import Executor
from .handles import WorkflowHandle
from .on_loop import refuse_on_loop
from .process import DBOSProcess
from .queues import Queue
from .recovery import DEFAULT_MAX_RECOVERY_ATTEMPTS
from .registry import registry
from .results import get_result_recorded
from .serialization import use_serializer
from .serializers import WorkflowSerializationFormat
from .starts import start_call
from .status import WorkflowStatus, status_from_row
from .steps import durable_sleep
from .tracing import dbos_tracer
from .web import install_web_middleware, refuse_conductor, warn_admin_server

__all__ = ["DBOS"]

F = TypeVar("F", bound=Callable[..., Any])
# A workflow function's parameters and result, carried to its handle by start_workflow/enqueue.
P = ParamSpec("P")
R = TypeVar("R")


class DBOS(
    AsyncAPI, AsyncWaitsAPI, AsyncAdminAPI, AsyncMessagingAPI, AsyncQueuesAPI,
    AdminAPI, ContextAPI, MessagingAPI, DBOSProperties, SchedulesAPI, VersioningAPI, QueuesAPI,
):
    """The durable-workflow runtime of this process (a singleton, as in DBOS Transact): a
    facade over the process object that ``DBOS(config=...)`` builds."""

    _lock = threading.RLock()

    def __init__(
        self,
        *,
        config: DBOSConfig,
        fastapi: Any = None,
        flask: Any = None,
        conductor_url: str | None = None,
        conductor_key: str | None = None,
    ) -> None:
        refuse_conductor(conductor_url, conductor_key)
        with DBOS._lock:
            current = current_process()
            if current is not None and current.launched:
                raise DBOSException("DBOS is already launched in this process; call DBOS.destroy() first")
            # Validated before anything changes: a bad config leaves the current process alone.
            process = DBOSProcess(resolve_config(config), registry)
            # Bad tracing and log-export settings are refused here too, before anything changes.
            otlp.check_endpoints("otlp_logs_endpoints", process.config.raw.get("otlp_logs_endpoints"))
            dbos_tracer.config(process.config.raw, process.config.executor_id, process.config.application_version)
            use_serializer(process.config.raw.get("serializer"))  # process-wide, as DBOS's is per instance
            otlp_logs.configure(process.config.raw, process.config.executor_id, process.config.application_version)
            make_current(process)
        self.config: ResolvedConfig = process.config
        warn_admin_server(process.config.raw.get("run_admin_server"))
        install_web_middleware(fastapi, flask)

    # -- lifecycle ---------------------------------------------------------------------------

    @classmethod
    def launch(cls) -> None:
        """Connect to the system database (starting the embedded one if no URL is configured),
        migrate it, join the cluster, and recover this executor's PENDING workflows (in the
        background: launch returns once they are listed).

        All or nothing: a launch that fails stops whatever it started (threads, connections,
        membership) before raising, so it can simply be called again. Launching an instance that
        is already launched changes nothing and says so in a warning, as DBOS does."""
        with cls._lock:
            process = current_process()
            if process is None:
                raise DBOSException("create DBOS(config=...) before calling DBOS.launch()")
            # Log lines outside any workflow name this executor (inside one, its own executor).
            logs.set_executor_id(process.config.executor_id)
            try:
                process.launch()
            except BaseException:
                logs.set_executor_id(None)
                raise

    @classmethod
    def destroy(cls, *, destroy_registry: bool = False, workflow_completion_timeout_sec: float = 0) -> None:
        """Leave the cluster and close every connection, so a new ``DBOS(config=...)`` can be
        launched. Running workflows get ``workflow_completion_timeout_sec`` to finish; the rest
        stop without writing and are handed to live members that can run them (what nobody can
        take stays PENDING for this executor id's next launch)."""
        with cls._lock:
            process = current_process()
            if process is not None:
                process.destroy(workflow_completion_timeout_sec)
                logs.set_executor_id(None)
            otlp_logs.detach()
            make_current(None)
            use_serializer(None)  # the serializer was that instance's
            if destroy_registry:
                registry.clear()

    @classmethod
    def _executor_or_raise(cls, what: str) -> Executor:
        return executor_for(what)

    @classmethod
    def _process(cls) -> DBOSProcess:
        """The current process object (tests inspect its executor and services)."""
        process = current_process()
        if process is None:
            raise not_launched()
        return process

    # -- decorators --------------------------------------------------------------------------

    @classmethod
    def workflow(
        cls,
        *,
        name: str | None = None,
        max_recovery_attempts: int | None = DEFAULT_MAX_RECOVERY_ATTEMPTS,
        serialization_type: WorkflowSerializationFormat | None = None,
        validate_args: Callable[..., Any] | None = None,
        validate_input: Callable[..., Any] | None = None,
    ) -> Callable[[F], F]:
        """Make a function a durable workflow.

        ``name`` is recorded in the database (default: the function's qualified name);
        ``max_recovery_attempts`` bounds how often a crashed execution is recovered;
        ``serialization_type`` picks the format of its inputs and outcome (``PORTABLE`` JSON
        for other languages' clients); ``validate_args`` (DBOS's) turns the inputs read back
        from the row into the arguments it runs with; ``validate_input`` (pgfleet's) is called
        with the arguments of every start, before anything is recorded, and rejects them by
        raising or returning False.
        """
        return decorators.workflow(
            registry, name, max_recovery_attempts, validate_input,
            serialization_type=serialization_type, validate_args=validate_args,
        )

    @classmethod
    def step(
        cls,
        *,
        name: str | None = None,
        retries_allowed: bool = False,
        interval_seconds: float = 1.0,
        max_attempts: int = 3,
        backoff_rate: float = 2.0,
        should_retry: Callable[[BaseException], bool] | None = None,
        preemptible: bool = False,
    ) -> Callable[[F], F]:
        """Make a function a checkpointed step.

        Inside a workflow its result (or error) is recorded once and returned on replay. With
        ``retries_allowed`` it is attempted up to ``max_attempts`` times, sleeping
        ``interval_seconds * backoff_rate**i`` after attempt ``i``; only the final outcome is
        recorded (``DBOSMaxStepRetriesExceeded`` when every attempt failed). ``preemptible``
        is for async steps only, as in DBOS (a sync step with it is refused).
        """
        return decorators.step(
            registry, name=name, retries_allowed=retries_allowed, interval_seconds=interval_seconds,
            max_attempts=max_attempts, backoff_rate=backoff_rate, should_retry=should_retry, preemptible=preemptible,
        )

    @classmethod
    def transaction(cls, isolation_level: str = "SERIALIZABLE", *, name: str | None = None) -> Callable[[F], F]:
        """Make a function a database transaction (on the application database, else the system one).

        Its body uses ``DBOS.sql_session`` (a SQLAlchemy Session inside the transaction); its
        result is checkpointed with it, so its writes happen exactly once.
        """
        return decorators.transaction(registry, isolation_level, name)

    @classmethod
    def scheduled(cls, cron: str) -> Callable[[F], F]:
        """Run a workflow on a cron schedule (5 fields, or 6 with seconds first), once per tick
        across the whole fleet. Apply it above ``@DBOS.workflow()``; the function receives
        ``(scheduled_time, actual_time)``."""
        return decorators.scheduled(registry, cron)

    @classmethod
    def dbos_class(cls, class_name: str | None = None) -> Callable[[type], type]:
        """Register a class whose methods are workflows or steps.

        Instance-method workflows need instances of ``DBOSConfiguredInstance`` (their
        ``config_name`` finds the instance again at recovery); classmethods and staticmethods
        work on any registered class.
        """
        return decorators.dbos_class(registry, class_name)

    # -- starting and finding workflows -------------------------------------------------------

    @classmethod
    def start_workflow(cls, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Start a workflow in the background and return its handle at once (typed: the
        handle's ``get_result()`` returns what ``func`` returns)."""
        handle: WorkflowHandle[R] = start_call(func, args, dict(kwargs))
        return handle

    @classmethod
    def listen_queues(cls, queues: Sequence[Queue | str]) -> None:
        """Serve (dequeue from) only these queues in this process, named as ``Queue`` objects or
        by name (a database-backed queue too); call it once, after ``DBOS()`` and before
        ``DBOS.launch()``, as in DBOS. The ``queues`` config key does the same and takes
        precedence. The internal queue (client resumes, scheduled ticks) is always served."""
        process = current_process()
        if process is None:
            raise DBOSException("No DBOS was created yet")
        if isinstance(queues, (str, Queue)) or not isinstance(queues, Sequence):
            raise DBOSException(f"DBOS.listen_queues takes a list of queues or queue names, got {queues!r}")
        names = []
        for queue in queues:
            if not isinstance(queue, (str, Queue)):
                raise DBOSException(f"DBOS.listen_queues takes Queue objects or queue names, got {queue!r}")
            names.append(queue if isinstance(queue, str) else queue.name)
        process.listen_queues(tuple(names))

    @classmethod
    def retrieve_workflow(cls, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        """A handle on an existing workflow (raises if it does not exist and
        ``existing_workflow`` is True; inside a workflow that check is a recorded
        ``DBOS.getStatus``, as in DBOS)."""
        refuse_on_loop("DBOS.retrieve_workflow")
        executor = cls._executor_or_raise("DBOS.retrieve_workflow")
        if existing_workflow and cls.get_workflow_status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError("target", workflow_id)
        return WorkflowHandle(workflow_id, source=executor)

    @classmethod
    def get_workflow_status(cls, workflow_id: str) -> WorkflowStatus | None:
        """The workflow's status, or None if no workflow has this id."""
        refuse_on_loop("DBOS.get_workflow_status")
        executor = cls._executor_or_raise("DBOS.get_workflow_status")

        def read() -> WorkflowStatus | None:
            row = executor.db.workflows.status(workflow_id)
            return status_from_row(row) if row else None

        return executor.recorded_call("DBOS.getStatus", read)

    @classmethod
    def get_result(cls, workflow_id: str) -> Any:
        """Wait for a workflow and return its result (or raise its error); inside a workflow one
        recorded ``DBOS.getResult``, as DBOS records it."""
        refuse_on_loop("DBOS.get_result")
        return get_result_recorded(cls._executor_or_raise("DBOS.get_result"), workflow_id)

    @classmethod
    def fleet_status(cls) -> FleetStatus:
        """The cluster as the system database sees it: members (heartbeat age, epoch, leader
        mark, running workflows), the leader's term, queue counts and recent takeovers."""
        return fleet_status(cls._executor_or_raise("DBOS.fleet_status").db)

    # -- inside workflows ------------------------------------------------------------------------

    @classmethod
    def sleep(cls, seconds: float) -> None:
        """Sleep durably inside a workflow: the wake-up time is checkpointed, so a recovered
        workflow sleeps only what is left. As in DBOS, a positive sleep outside a workflow
        raises ``DBOSException`` and one inside a step or transaction ``AssertionError``."""
        refuse_on_loop("DBOS.sleep")
        if seconds <= 0:  # as DBOS: nothing to wait for, no position taken
            return
        durable_sleep(cls._executor_or_raise("DBOS.sleep"), seconds)

    @classmethod
    def recv(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """Inside a workflow: the oldest message on ``topic``, waiting durably up to
        ``timeout_seconds``; ``None`` if none arrives."""
        refuse_on_loop("DBOS.recv")
        return messages.recv(cls._executor_or_raise("DBOS.recv"), topic, timeout_seconds)

    @classmethod
    def set_event(
        cls, key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT
    ) -> None:
        """Inside a workflow: publish ``value`` under ``key`` for ``get_event`` readers."""
        refuse_on_loop("DBOS.set_event")
        messages.set_event(cls._executor_or_raise("DBOS.set_event"), key, value, serialization_type=serialization_type)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of a workflow's event, waiting up to ``timeout_seconds``."""
        refuse_on_loop("DBOS.get_event")
        return messages.get_event(cls._executor_or_raise("DBOS.get_event"), workflow_id, key, timeout_seconds)

    @classmethod
    def write_stream(
        cls, key: str, value: Any, *, serialization_type: WorkflowSerializationFormat = WorkflowSerializationFormat.DEFAULT
    ) -> None:
        """Inside a workflow (or one of its steps): append ``value`` to its stream ``key``."""
        refuse_on_loop("DBOS.write_stream")
        streams.write_stream(cls._executor_or_raise("DBOS.write_stream"), key, value, serialization_type=serialization_type)

    @classmethod
    def close_stream(cls, key: str) -> None:
        """Inside a workflow: end its stream ``key``."""
        refuse_on_loop("DBOS.close_stream")
        streams.close_stream(cls._executor_or_raise("DBOS.close_stream"), key)

    @classmethod
    def get_context(cls) -> DBOSContext:
        """The running workflow's metadata (``workflow_id``, ``authenticated_user`` ...)."""
        ctx = current_workflow()
        process = current_process()
        return DBOSContext(
            workflow_id=ctx.workflow_id if ctx else None,
            step_id=ctx.step_id if ctx else None,
            executor_id=ctx.executor_id if ctx else (process.config.executor_id if process else None),
            authenticated_user=ctx.authenticated_user if ctx else None,
            authenticated_roles=ctx.authenticated_roles if ctx else None,
            assumed_role=ctx.assumed_role if ctx else None,
            workflow_deadline_epoch_ms=ctx.deadline_epoch_ms if ctx else None,
        )

