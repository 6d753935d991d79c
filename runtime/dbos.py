"""``DBOS``: the public API, with DBOS Transact's names and signatures.

The decorators register functions in :mod:`runtime.registry` (they work before ``DBOS()`` is
created, and after ``launch()``); calls go to the :class:`~runtime.executor.Executor` of the
launched instance. Follow a workflow from here: ``workflow()`` → ``Executor.start`` →
``Executor.run`` → ``steps.run_step`` → ``Executor.checkpoint`` →
``db.steps.record`` (``sysdb/steps.py``) → ``sysdb/sql/record_step_output.sql``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

from . import logs, messages, recovery, scheduler, streams
from .config import DBOSConfig, ResolvedConfig, resolve_config
from .context import DBOSContext, current_workflow, sql_session, take_start_options
from .enqueue import enqueue_workflow
from .errors import DBOSException, DBOSNonExistentWorkflowError, DBOSNotLaunchedError, DBOSWorkflowCancelledError
from .executor import Executor
from .handles import WorkflowHandle, WorkflowHandleAsync
from .queues import Queue, queue_registry
from .registry import (
    CLASS_METHOD,
    INSTANCE_METHOD,
    PLAIN,
    RegisteredStep,
    RegisteredWorkflow,
    registry,
)
from .services import ClusterServices
from .status import StepInfo, WorkflowStatus, status_from_row, step_from_row
from .steps import durable_sleep, run_step, run_transaction
from .workflows_admin import cancel_workflow, fork_workflow, list_workflows, resume_workflow, run_resumed, wake_forked

__all__ = ["DBOS"]

F = TypeVar("F", bound=Callable[..., Any])
# A workflow function's parameters and result, carried to its handle by start_workflow/enqueue.
P = ParamSpec("P")
R = TypeVar("R")

ISOLATION_LEVELS = {"SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED", "READ UNCOMMITTED"}


class _DBOSMeta(type):
    """Class-level properties: ``DBOS.workflow_id``, ``DBOS.step_id``, ``DBOS.logger`` ..."""

    @property
    def workflow_id(cls) -> str | None:
        ctx = current_workflow()
        return ctx.workflow_id if ctx else None

    @property
    def step_id(cls) -> int | None:
        ctx = current_workflow()
        return ctx.step_id if ctx else None

    @property
    def logger(cls) -> Any:
        return logs.logger

    @property
    def authenticated_user(cls) -> str | None:
        ctx = current_workflow()
        return ctx.authenticated_user if ctx else None

    @property
    def authenticated_roles(cls) -> list[str] | None:
        ctx = current_workflow()
        return ctx.authenticated_roles if ctx else None

    @property
    def assumed_role(cls) -> str | None:
        ctx = current_workflow()
        return ctx.assumed_role if ctx else None

    @property
    def sql_session(cls) -> Any:
        """The psycopg connection of the running ``@DBOS.transaction`` (in its transaction)."""
        session = sql_session.get()
        if session is None:
            raise DBOSException("DBOS.sql_session is only available inside a @DBOS.transaction function")
        return session

    @property
    def config(cls) -> ResolvedConfig:
        return DBOS._instance_or_raise("DBOS.config").config

    @property
    def executor_id(cls) -> str:
        return DBOS._instance_or_raise("DBOS.executor_id").config.executor_id


class DBOS(metaclass=_DBOSMeta):
    """The durable-workflow runtime of this process (a singleton, as in DBOS Transact)."""

    _instance: DBOS | None = None
    _lock = threading.RLock()
    # Per-instance state, assigned in __new__ (declared here so that type checkers see it).
    _resolved: ResolvedConfig
    _executor: Executor | None

    def __new__(cls, *, config: DBOSConfig) -> DBOS:
        with cls._lock:
            current = cls._instance
            if current is not None and current._executor is not None:
                raise DBOSException("DBOS is already launched in this process; call DBOS.destroy() first")
            instance = super().__new__(cls)
            instance._resolved = resolve_config(config)
            instance._executor = None
            cls._instance = instance
            return instance

    def __init__(self, *, config: DBOSConfig) -> None:
        # All the work is in __new__, so that DBOS(config=...) is validated before it exists.
        self.config: ResolvedConfig = self._resolved

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
            instance = cls._instance
            if instance is None:
                raise DBOSException("create DBOS(config=...) before calling DBOS.launch()")
            if instance._executor is not None:
                # DBOS's own words and behaviour (apps that launch from several entry points
                # rely on it); not silent, so a mistaken second launch shows in the logs.
                logs.logger.warning("DBOS was already launched")
                return
            logs.configure_level(instance.config.log_level)
            executor = Executor(instance.config)
            try:
                cls._launch(instance, executor)
            except BaseException:
                instance._executor = None
                executor.destroy()
                raise

    @classmethod
    def _launch(cls, instance: DBOS, executor: Executor) -> None:
        executor.launch()
        services = ClusterServices(executor)
        services.register()
        instance._executor = executor
        executor.services = services
        services.start_heartbeat()  # before recovery: a long recovery must not look like death
        # Read before any work is taken, so the list holds only what an earlier life left.
        recovery.requeue_unfinished(executor)
        pending = recovery.list_recoverable(executor)
        scheduler.declare_schedules(executor.db, lambda name: registry.workflow(name) is not None)
        services.start(recover=pending)

    @classmethod
    def destroy(cls, *, destroy_registry: bool = False, workflow_completion_timeout_sec: float = 0) -> None:
        """Leave the cluster and close every connection, so a new ``DBOS(config=...)`` can be
        launched. Running workflows get ``workflow_completion_timeout_sec`` to finish; the rest
        stop without writing and are handed to live members that can run them (what nobody can
        take stays PENDING for this executor id's next launch)."""
        with cls._lock:
            instance = cls._instance
            if instance is not None and instance._executor is not None:
                # Stop the executor first: workflows finishing within the grace period still
                # need it (and the instance) to record their steps.
                instance._executor.destroy(workflow_completion_timeout_sec)
                instance._executor = None
            cls._instance = None
            if destroy_registry:
                registry.clear()
                queue_registry.clear()
                scheduler.schedules.clear()

    @classmethod
    def _instance_or_raise(cls, what: str) -> DBOS:
        instance = cls._instance
        if instance is None:
            raise DBOSNotLaunchedError(what)
        return instance

    @classmethod
    def _executor_or_raise(cls, what: str) -> Executor:
        ctx = current_workflow()
        if ctx is not None and ctx.executor is not None:
            return ctx.executor  # inside a workflow: the executor that runs it
        instance = cls._instance
        if instance is None or instance._executor is None:
            raise DBOSNotLaunchedError(what)
        return instance._executor

    # -- decorators --------------------------------------------------------------------------

    @classmethod
    def workflow(
        cls,
        *,
        name: str | None = None,
        max_recovery_attempts: int | None = None,
        validate_args: Callable[..., Any] | None = None,
        validate_input: Callable[..., Any] | None = None,
    ) -> Callable[[F], F]:
        """Make a function a durable workflow.

        ``name`` is recorded in the database (default: the function's qualified name);
        ``max_recovery_attempts`` bounds how often a crashed execution is recovered;
        ``validate_input`` (DBOS also calls it ``validate_args``) is called with the arguments
        before anything is recorded and rejects them by raising or returning False.
        """
        if max_recovery_attempts is not None and (not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0):
            raise DBOSException(f"max_recovery_attempts must be a non-negative integer, got {max_recovery_attempts!r}")
        validator = validate_input or validate_args

        def decorator(func: F) -> F:
            entry = RegisteredWorkflow(
                name=name or func.__qualname__,
                func=func,
                max_recovery_attempts=max_recovery_attempts,
                validate_input=validator,
                kind=_method_kind(func),
            )
            registry.add_workflow(entry)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                executor = cls._executor_or_raise(f"workflow {entry.name!r}")
                bound, rest = _split_bound(entry, args)
                return executor.start(entry, bound, rest, kwargs, background=False)

            wrapper.__pgfleet_workflow__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function
            return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

        return decorator

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
    ) -> Callable[[F], F]:
        """Make a function a checkpointed step.

        Inside a workflow its result (or error) is recorded once and returned on replay. With
        ``retries_allowed`` it is attempted up to ``max_attempts`` times, sleeping
        ``interval_seconds * backoff_rate**i`` after attempt ``i``; only the final outcome is
        recorded (``DBOSMaxStepRetriesExceeded`` when every attempt failed).
        """
        if not isinstance(max_attempts, int) or max_attempts < 1:
            raise DBOSException(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
        if interval_seconds < 0 or backoff_rate <= 0:
            raise DBOSException("interval_seconds must be >= 0 and backoff_rate > 0")

        def decorator(func: F) -> F:
            entry = RegisteredStep(
                name=name or func.__qualname__,
                func=func,
                retries_allowed=retries_allowed,
                interval_seconds=interval_seconds,
                max_attempts=max_attempts if retries_allowed else 1,
                backoff_rate=backoff_rate,
                should_retry=should_retry,
            )
            registry.add_step(entry)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                ctx = current_workflow()
                if ctx is None:
                    return func(*args, **kwargs)
                return run_step(cls._executor_or_raise(f"step {entry.name!r}"), entry, args, kwargs)

            wrapper.__pgfleet_step__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function
            return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

        return decorator

    @classmethod
    def transaction(cls, isolation_level: str = "SERIALIZABLE", *, name: str | None = None) -> Callable[[F], F]:
        """Make a function a database transaction on the system database.

        Its body uses ``DBOS.sql_session`` (a psycopg connection inside the transaction); its
        result is checkpointed in the same transaction, so its writes happen exactly once.
        """
        level = isolation_level.upper()
        if level not in ISOLATION_LEVELS:
            raise DBOSException(f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, got {isolation_level!r}")

        def decorator(func: F) -> F:
            entry = RegisteredStep(
                name=name or func.__qualname__,
                func=func,
                retries_allowed=False,
                interval_seconds=0,
                max_attempts=1,
                backoff_rate=1,
            )
            registry.add_step(entry)

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                executor = cls._executor_or_raise(f"transaction {entry.name!r}")
                return run_transaction(executor, entry, level, args, kwargs)

            return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

        return decorator

    @classmethod
    def scheduled(cls, cron: str) -> Callable[[F], F]:
        """Run a workflow on a cron schedule (5 fields, or 6 with seconds first), once per tick
        across the whole fleet. Apply it above ``@DBOS.workflow()``; the function receives
        ``(scheduled_time, actual_time)``."""

        def decorator(func: F) -> F:
            entry = getattr(func, "__pgfleet_workflow__", None)
            if not isinstance(entry, RegisteredWorkflow):
                raise DBOSException(f"@DBOS.scheduled goes above @DBOS.workflow(): {getattr(func, '__qualname__', func)} is not a workflow")
            scheduler.add_schedule(entry.name, cron)
            instance = cls._instance
            if instance is not None and instance._executor is not None:  # decorated after launch
                scheduler.declare_schedules(instance._executor.db, lambda name: name == entry.name)
            return func

        return decorator

    @classmethod
    def dbos_class(cls, class_name: str | None = None) -> Callable[[type], type]:
        """Register a class whose methods are workflows or steps.

        Instance-method workflows need instances of ``DBOSConfiguredInstance`` (their
        ``config_name`` finds the instance again at recovery); classmethods and staticmethods
        work on any registered class.
        """

        def decorator(klass: type) -> type:
            if class_name is not None and class_name != klass.__qualname__:
                raise DBOSException(
                    f"pgfleet records classes by their qualified name; class_name={class_name!r} "
                    f"for {klass.__qualname__} is not supported"
                )
            registry.add_class(klass)
            for attribute in vars(klass).values():
                kind, func = PLAIN, attribute
                if isinstance(attribute, classmethod):
                    kind, func = CLASS_METHOD, attribute.__func__
                elif isinstance(attribute, staticmethod):
                    kind, func = PLAIN, attribute.__func__
                entry = getattr(func, "__pgfleet_workflow__", None)
                if isinstance(entry, RegisteredWorkflow):
                    entry.kind = kind if kind != PLAIN or isinstance(attribute, staticmethod) else INSTANCE_METHOD
                    entry.class_name = klass.__qualname__
            return klass

        return decorator

    # -- starting and finding workflows -------------------------------------------------------

    @classmethod
    def start_workflow(cls, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Start a workflow in the background and return its handle at once (typed: the
        handle's ``get_result()`` returns what ``func`` returns)."""
        entry, bound = _workflow_of(func)
        executor = cls._executor_or_raise(f"workflow {entry.name!r}")
        call_args: tuple[Any, ...] = args
        if bound is None:
            bound, call_args = _split_bound(entry, call_args)
        handle: WorkflowHandle[R] = executor.start(entry, bound, call_args, dict(kwargs), background=True)
        return handle

    @classmethod
    async def start_workflow_async(cls, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandleAsync[R]:
        """``start_workflow`` for asyncio code."""
        return WorkflowHandleAsync(cls.start_workflow(func, *args, **kwargs))

    @classmethod
    def _enqueue(cls, queue: Queue, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> WorkflowHandle[Any]:
        entry, bound = _workflow_of(func)
        executor = cls._executor_or_raise(f"enqueue of workflow {entry.name!r}")
        if bound is None:
            bound, args = _split_bound(entry, args)
        return enqueue_workflow(executor, queue, entry, bound, tuple(args), kwargs)

    @classmethod
    def listen_queues(cls, queues: list[Queue]) -> None:
        """Serve only these queues in this process (call before ``DBOS.launch()``); the
        ``queues`` config key does the same by name and takes precedence."""
        if not all(isinstance(q, Queue) for q in queues):
            raise DBOSException("DBOS.listen_queues takes a list of Queue objects")
        instance = cls._instance
        if instance is not None and instance._executor is not None:
            raise DBOSException("call DBOS.listen_queues before DBOS.launch()")
        queue_registry.listened = tuple(q.name for q in queues)

    @classmethod
    def list_queued_workflows(cls, **filters: Any) -> list[WorkflowStatus]:
        """Workflows waiting in or running from queues (ENQUEUED, DELAYED or PENDING)."""
        executor = cls._executor_or_raise("DBOS.list_queued_workflows")
        return executor.recorded_call(
            "DBOS.listQueuedWorkflows", lambda: list_workflows(executor.db, queues_only=True, **filters)
        )

    @classmethod
    def retrieve_workflow(cls, workflow_id: str, existing_workflow: bool = True) -> WorkflowHandle[Any]:
        """A handle on an existing workflow (raises if it does not exist and
        ``existing_workflow`` is True)."""
        executor = cls._executor_or_raise("DBOS.retrieve_workflow")
        if existing_workflow and executor.db.workflows.status(workflow_id) is None:
            raise DBOSNonExistentWorkflowError(workflow_id)
        return WorkflowHandle(executor, workflow_id)

    @classmethod
    def get_workflow_status(cls, workflow_id: str) -> WorkflowStatus | None:
        """The workflow's status, or None if no workflow has this id."""
        executor = cls._executor_or_raise("DBOS.get_workflow_status")

        def read() -> WorkflowStatus | None:
            row = executor.db.workflows.status(workflow_id)
            return status_from_row(row) if row else None

        return executor.recorded_call("DBOS.getStatus", read)

    @classmethod
    def get_result(cls, workflow_id: str) -> Any:
        """Wait for a workflow and return its result (or raise its error)."""
        return cls.retrieve_workflow(workflow_id).get_result()

    @classmethod
    def list_workflows(cls, **filters: Any) -> list[WorkflowStatus]:
        """Workflows matching the filters (DBOS's keyword arguments: ``workflow_ids``,
        ``status``, ``name``, ``start_time``, ``end_time``, ``executor_id``, ``queue_name``,
        ``limit``, ``offset``, ``sort_desc``, ``load_input``, ``load_output`` ...)."""
        executor = cls._executor_or_raise("DBOS.list_workflows")
        return executor.recorded_call("DBOS.listWorkflows", lambda: list_workflows(executor.db, **filters))

    @classmethod
    def list_workflow_steps(cls, workflow_id: str) -> list[StepInfo]:
        """The recorded operations of a workflow, in order."""
        executor = cls._executor_or_raise("DBOS.list_workflow_steps")
        return executor.recorded_call(
            "DBOS.listWorkflowSteps",
            lambda: [step_from_row(r) for r in executor.db.steps.list_recorded(workflow_id)],
        )

    @classmethod
    def cancel_workflow(cls, workflow_id: str) -> None:
        """Cancel a workflow: it stops at its next step, wherever it runs."""
        executor = cls._executor_or_raise("DBOS.cancel_workflow")
        ctx = current_workflow()

        def cancelled(_: Any) -> None:
            # A workflow that cancelled itself stops at its next operation, as one cancelled
            # elsewhere would (once: not when a resumed run replays this call).
            if ctx is not None and ctx.workflow_id == workflow_id:
                executor.lose(ctx, DBOSWorkflowCancelledError(f"workflow {workflow_id!r} was cancelled"))

        executor.recorded_effect(
            "DBOS.cancelWorkflow", lambda conn: cancel_workflow(executor.db, workflow_id, conn), after=cancelled
        )

    @classmethod
    def resume_workflow(cls, workflow_id: str) -> WorkflowHandle[Any]:
        """Resume a cancelled (or dead-lettered) workflow here, from its first unfinished step."""
        executor = cls._executor_or_raise("DBOS.resume_workflow")
        executor.recorded_effect(
            "DBOS.resumeWorkflow",
            lambda conn: resume_workflow(executor, workflow_id, conn),
            after=lambda epoch: run_resumed(executor, workflow_id, epoch),
        )
        return WorkflowHandle(executor, workflow_id)

    @classmethod
    def fleet_status(cls) -> Any:
        """The cluster as the system database sees it: members (heartbeat age, epoch, leader
        mark, running workflows), the leader's term, queue counts and recent takeovers."""
        from cluster.coordination.status import fleet_status

        return fleet_status(cls._executor_or_raise("DBOS.fleet_status").db)

    @classmethod
    def fork_workflow(cls, workflow_id: str, start_step: int, *, application_version: str | None = None) -> WorkflowHandle[Any]:
        """Run a copy of a workflow from ``start_step``: earlier steps keep their recorded
        results, later ones run again. The copy gets a new id (or the one ``SetWorkflowID``
        gives) and runs on any executor that has the function."""
        executor = cls._executor_or_raise("DBOS.fork_workflow")
        # Chosen before the fork, so that the checkpoint written with it can record it.
        new_id = take_start_options().workflow_id or str(uuid.uuid4())

        def fork(conn: Any) -> str:
            return fork_workflow(
                executor.db, workflow_id, start_step, new_workflow_id=new_id, application_version=application_version, conn=conn
            )

        forked = executor.recorded_effect("DBOS.forkWorkflow", fork, recorded_output=new_id, after=lambda _: wake_forked(executor.db))
        return WorkflowHandle(executor, forked)

    # -- inside workflows ------------------------------------------------------------------------

    @classmethod
    def sleep(cls, seconds: float) -> None:
        """Sleep durably: inside a workflow the wake-up time is checkpointed, so a recovered
        workflow sleeps only what is left."""
        if current_workflow() is None:
            import time

            time.sleep(seconds)
            return
        durable_sleep(cls._executor_or_raise("DBOS.sleep"), seconds)

    @classmethod
    def send(cls, destination_id: str, message: Any, topic: str | None = None) -> None:
        """Send a message to a workflow; from inside a workflow it is sent exactly once."""
        messages.send(cls._executor_or_raise("DBOS.send"), destination_id, message, topic)

    @classmethod
    def recv(cls, topic: str | None = None, timeout_seconds: float = 60) -> Any:
        """Inside a workflow: the oldest message on ``topic``, waiting durably up to
        ``timeout_seconds``; ``None`` if none arrives."""
        return messages.recv(cls._executor_or_raise("DBOS.recv"), topic, timeout_seconds)

    @classmethod
    def set_event(cls, key: str, value: Any) -> None:
        """Inside a workflow: publish ``value`` under ``key`` for ``get_event`` readers."""
        messages.set_event(cls._executor_or_raise("DBOS.set_event"), key, value)

    @classmethod
    def get_event(cls, workflow_id: str, key: str, timeout_seconds: float = 60) -> Any:
        """The latest value of a workflow's event, waiting up to ``timeout_seconds``."""
        return messages.get_event(cls._executor_or_raise("DBOS.get_event"), workflow_id, key, timeout_seconds)

    @classmethod
    def write_stream(cls, key: str, value: Any) -> None:
        """Inside a workflow (or one of its steps): append ``value`` to its stream ``key``."""
        streams.write_stream(cls._executor_or_raise("DBOS.write_stream"), key, value)

    @classmethod
    def close_stream(cls, key: str) -> None:
        """Inside a workflow: end its stream ``key``."""
        streams.close_stream(cls._executor_or_raise("DBOS.close_stream"), key)

    @classmethod
    def read_stream(cls, workflow_id: str, key: str) -> Iterator[Any]:
        """Yield a workflow's stream values in order until it is closed or the workflow ends."""
        return streams.read_stream(cls._executor_or_raise("DBOS.read_stream"), workflow_id, key)

    @classmethod
    def get_context(cls) -> DBOSContext:
        """The running workflow's metadata (``workflow_id``, ``authenticated_user`` ...)."""
        ctx = current_workflow()
        instance = cls._instance
        return DBOSContext(
            workflow_id=ctx.workflow_id if ctx else None,
            step_id=ctx.step_id if ctx else None,
            executor_id=instance.config.executor_id if instance else None,
            authenticated_user=ctx.authenticated_user if ctx else None,
            authenticated_roles=ctx.authenticated_roles if ctx else None,
            assumed_role=ctx.assumed_role if ctx else None,
            workflow_deadline_epoch_ms=ctx.deadline_epoch_ms if ctx else None,
        )


def _method_kind(func: Callable[..., Any]) -> str:
    """Guess from the signature whether a decorated function is a method; ``@DBOS.dbos_class``
    settles it from the class body (classmethod and staticmethod objects)."""
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return PLAIN
    scopes = func.__qualname__.split(".")
    defined_in_class = len(scopes) > 1 and scopes[-2] != "<locals>"
    if defined_in_class:
        if params and params[0] == "self":
            return INSTANCE_METHOD
        if params and params[0] == "cls":
            return CLASS_METHOD
    return PLAIN


def _split_bound(entry: RegisteredWorkflow, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    if entry.kind in (INSTANCE_METHOD, CLASS_METHOD):
        if not args:
            raise DBOSException(f"workflow {entry.name!r} is a method: call it on an instance or class")
        return args[0], tuple(args[1:])
    return None, tuple(args)


def _workflow_of(func: Callable[..., Any]) -> tuple[RegisteredWorkflow, Any]:
    bound = None
    target = func
    if inspect.ismethod(func):
        bound, target = func.__self__, func.__func__
    entry = getattr(target, "__pgfleet_workflow__", None)
    if not isinstance(entry, RegisteredWorkflow):
        name = getattr(func, "__qualname__", repr(func))
        raise DBOSException(f"{name} is not a workflow: decorate it with @DBOS.workflow()")
    return entry, bound

