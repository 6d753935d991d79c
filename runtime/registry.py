"""What the program declares: its workflows and steps, classes, queues and schedules.

Recovery, queue claiming and takeover find a workflow's function by the ``name`` column of its
status row, so each decorated function is registered under a unique name (by default its
``__qualname__``, as DBOS does). Methods of ``@DBOS.dbos_class`` classes are registered too;
instance methods find their instance again through ``DBOSConfiguredInstance.config_name``.

The decorators and ``Queue(...)`` declare into :data:`registry`, before any ``DBOS()`` exists
or after it launched (``DBOS.listen_queues`` is the process object's, as in DBOS). It is
code, not state: every process object of the interpreter (:class:`runtime.process.DBOSProcess`)
reads the registry it was built with, and keeps its running state (executor, services,
notification hub, ...) to itself.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sysdb.claims import MethodBindings

from .context import current_workflow
from .errors import DBOSException, DBOSWorkflowFunctionNotFoundError
from .logs import logger
from .roles import assumed
from .tracing import traced

# How often a crashed execution is recovered before it is marked MAX_RECOVERY_ATTEMPTS_EXCEEDED
# (DBOS's default, also for steps and transactions run as workflows).
DEFAULT_MAX_RECOVERY_ATTEMPTS = 100

if TYPE_CHECKING:
    from .queues import Queue

__all__ = [
    "RegisteredWorkflow",
    "RegisteredStep",
    "Schedule",
    "Registry",
    "registry",
    "DBOSConfiguredInstance",
    "workflow_of",
    "split_bound",
    "method_kind",
    "call_workflow_function",
    "TEMP_WORKFLOW_PREFIX",
]

# The name prefix of the one-step workflow a step or transaction runs as when started on its own
# (DBOS's ``<temp>.<step name>``).
TEMP_WORKFLOW_PREFIX = "<temp>."

# How a workflow function receives its bound object: a plain function, an instance method
# (self is not part of the recorded inputs), or a classmethod.
PLAIN, INSTANCE_METHOD, CLASS_METHOD = "plain", "instance", "class"


@dataclass
class RegisteredWorkflow:
    name: str
    func: Callable[..., Any]
    max_recovery_attempts: int | None
    validate_input: Callable[..., Any] | None
    kind: str = PLAIN
    class_name: str | None = None
    # ``@DBOS.workflow(serialization_type=...)``: a WorkflowSerializationFormat, None for the default.
    serialization_type: Any = None
    # DBOS's ``validate_args``: ``(args, kwargs) -> (args, kwargs)``, run on the inputs read back
    # from the row when the workflow runs from it (recovery, a queue).
    validate_args: Callable[..., Any] | None = None

    @property
    def is_async(self) -> bool:
        """An ``async def`` workflow: its body is awaited on a loop, not run in a thread."""
        return inspect.iscoroutinefunction(self.func)


@dataclass
class RegisteredStep:
    name: str
    func: Callable[..., Any]
    retries_allowed: bool
    interval_seconds: float
    max_attempts: int
    backoff_rate: float
    should_retry: Callable[[BaseException], bool] | None = None
    # An async step whose body is cancelled when its workflow is cancelled or lost here.
    preemptible: bool = False

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.func)


@dataclass(frozen=True)
class Schedule:
    """A ``@DBOS.scheduled`` workflow and its cron expression (validated when declared)."""

    workflow_name: str
    cron: str

    @property
    def with_seconds(self) -> bool:
        return len(self.cron.split()) == 6


@dataclass
class Registry:
    workflows: dict[str, RegisteredWorkflow] = field(default_factory=dict)
    steps: dict[str, RegisteredStep] = field(default_factory=dict)
    classes: dict[str, type] = field(default_factory=dict)
    instances: dict[tuple[str, str], Any] = field(default_factory=dict)
    queues: dict[str, Queue] = field(default_factory=dict)
    schedules: dict[str, Schedule] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workflow(self, entry: RegisteredWorkflow) -> None:
        with self._lock:
            existing = self.workflows.get(entry.name)
            if existing is not None and _origin(existing.func) != _origin(entry.func):
                # As DBOS: a warning, and the last registration wins (recovery runs it).
                logger.warning(
                    f"Duplicate registration of function '{entry.name}'. A function named '{entry.name}' has "
                    "already been registered with DBOS. All functions registered with DBOS must have unique names."
                )
            self.workflows[entry.name] = entry

    def add_step(self, entry: RegisteredStep) -> None:
        with self._lock:
            self.steps[entry.name] = entry

    def workflow(self, name: str) -> RegisteredWorkflow | None:
        return self.workflows.get(name)

    def add_class(self, cls: type) -> None:
        with self._lock:
            self.classes[cls.__qualname__] = cls

    def add_instance(self, class_name: str, config_name: str, instance: Any) -> None:
        with self._lock:
            existing = self.instances.get((class_name, config_name))
            if existing is not None and existing is not instance:
                raise Exception(f"Duplicate instance registration for class '{class_name}' instance '{config_name}'")
            self.instances[(class_name, config_name)] = instance

    def instance(self, class_name: str, config_name: str) -> Any | None:
        return self.instances.get((class_name, config_name))

    def method_bindings(self) -> MethodBindings:
        """The classes, instances and method workflows a queue claim may bind here."""
        with self._lock:
            workflows = list(self.workflows.values())
            return MethodBindings(
                instances=sorted(self.instances),
                instance_methods=sorted(w.name for w in workflows if w.kind == INSTANCE_METHOD),
                class_methods=sorted(w.name for w in workflows if w.kind == CLASS_METHOD),
                classes=sorted(self.classes),
            )

    def add_queue(self, queue: Queue) -> None:
        with self._lock:
            if queue.name in self.queues:
                raise Exception(f"Queue {queue.name} has already been declared")
            self.queues[queue.name] = queue

    def queue(self, name: str) -> Queue | None:
        return self.queues.get(name)

    def all_queues(self) -> list[Queue]:
        with self._lock:
            return list(self.queues.values())

    def add_schedule(self, schedule: Schedule) -> None:
        with self._lock:
            self.schedules[schedule.workflow_name] = schedule

    def all_schedules(self) -> list[Schedule]:
        with self._lock:
            return list(self.schedules.values())

    def clear(self) -> None:
        with self._lock:
            self.workflows.clear()
            self.steps.clear()
            self.classes.clear()
            self.instances.clear()
            self.queues.clear()
            self.schedules.clear()

    def code_version(self) -> str:
        """A hash of the registered workflows' source: DBOS's default application version."""
        digest = hashlib.md5(usedforsecurity=False)
        for name in sorted(self.workflows):
            if name.startswith(TEMP_WORKFLOW_PREFIX):  # a step runnable as a workflow: not a workflow's code
                continue
            func = self.workflows[name].func
            try:
                digest.update(inspect.getsource(func).encode())
            except (OSError, TypeError):
                digest.update(name.encode())
        return digest.hexdigest()


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


# -- how a call reaches a registered workflow ----------------------------------------------------


def method_kind(func: Callable[..., Any]) -> str:
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


def split_bound(entry: RegisteredWorkflow, args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """A method workflow's call arguments: its bound object (the instance or class), and the rest."""
    if entry.kind in (INSTANCE_METHOD, CLASS_METHOD):
        if entry.class_name is None:  # its class was not decorated with @DBOS.dbos_class()
            target = "a class" if args and isinstance(args[0], type) else "a class instance"
            raise Exception(f"Function target appears to be {target}, but is not properly registered")
        if not args:
            raise DBOSException(f"workflow {entry.name!r} is a method: call it on an instance or class")
        return args[0], tuple(args[1:])
    return None, tuple(args)


def workflow_of(func: Callable[..., Any]) -> tuple[RegisteredWorkflow, Any]:
    """The registered workflow of a decorated function (or bound method), and its bound object."""
    bound = None
    target = func
    if inspect.ismethod(func):
        bound, target = func.__self__, func.__func__
    entry = getattr(target, "__pgfleet_workflow__", None)
    if not isinstance(entry, RegisteredWorkflow):
        # DBOS's class and words, so a program that catches it works on both.
        name = getattr(func, "__name__", repr(func))
        raise DBOSWorkflowFunctionNotFoundError("<NONE>", f"{name} is not a registered workflow function")
    return entry, bound


def call_workflow_function(entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a workflow's body in its span, once its required roles are checked (at every
    execution, wherever it runs: a refusal is the workflow's error)."""
    ctx = current_workflow()
    with traced(entry.name, "workflow", ctx.queue_name if ctx else None), assumed(entry.func, entry.name):
        if entry.kind in (INSTANCE_METHOD, CLASS_METHOD):
            return entry.func(bound, *args, **kwargs)
        return entry.func(*args, **kwargs)


async def call_workflow_coroutine(entry: RegisteredWorkflow, bound: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """:func:`call_workflow_function` for an ``async def`` body: awaited inside its span and
    its assumed role (which stay set in this task while it runs)."""
    ctx = current_workflow()
    with traced(entry.name, "workflow", ctx.queue_name if ctx else None), assumed(entry.func, entry.name):
        if entry.kind in (INSTANCE_METHOD, CLASS_METHOD):
            return await entry.func(bound, *args, **kwargs)
        return await entry.func(*args, **kwargs)


registry = Registry()


class DBOSConfiguredInstance:
    """Base class for objects whose methods are workflows and steps.

    ``config_name`` names this instance: it is recorded with each workflow started on it, so
    recovery in another process calls the method on the instance of the same name there.
    """

    def __init__(self, config_name: str) -> None:
        self.config_name = config_name
        # A nameless instance (DBOS accepts None) is recorded with no config_name, and found again
        # under "" (how recovery looks up a row whose config_name is NULL).
        registry.add_instance(type(self).__qualname__, config_name or "", self)
