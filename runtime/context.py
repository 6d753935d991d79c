"""Per-thread workflow state, and the start options that the ``with`` blocks of
:mod:`runtime.option_blocks` set for the next start.

A running workflow carries a :class:`WorkflowContext` in a context variable: its id, its
fencing token (owner executor id and ownership epoch), the counter that numbers its steps, and
the steps recorded by an earlier execution (only when it is being replayed). Steps, sleeps and
child workflows read it to know where they are; the step checkpoint writes with its token.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sysdb.steps import StepRow

from .errors import DBOSException

if TYPE_CHECKING:
    from .executor import Executor

__all__ = [
    "WorkflowContext",
    "DBOSContext",
    "StartOptions",
    "current_workflow",
    "active_workflow",
    "local_start_options",
    "take_start_options",
]


@dataclass
class WorkflowContext:
    """The state of one execution of one workflow, in the thread that runs it."""

    workflow_id: str
    name: str
    executor_id: str
    owner_epoch: int
    # The executor running it: every call made inside the workflow goes to it (not to the DBOS
    # facade's current one), even while DBOS.destroy() drains it, and when several executors run
    # in one interpreter.
    executor: Executor
    # Steps recorded by an earlier execution, by function id; None for a fresh workflow, so a
    # first execution never reads the operation_outputs table.
    recorded: dict[int, StepRow] | None = None
    authenticated_user: str | None = None
    assumed_role: str | None = None
    authenticated_roles: list[str] | None = None
    deadline_epoch_ms: int | None = None
    timeout_ms: int | None = None
    _last_function_id: int = 0
    queue_name: str | None = None
    # The format of the workflow row's inputs and outcome: pgfleet writes pickles, but a workflow
    # enqueued as portable JSON (by a client in another language) gets its result as JSON.
    serialization: str | None = None
    # The executor generation this execution started under (see Fencing.abandon_all).
    generation: int = 0
    in_transaction: bool = False
    # Set once this execution lost its workflow (a fenced write, a cancel, an expired lease):
    # the error every later operation raises before any user code runs, so the stop sticks
    # even if user code swallowed the first one.
    lost: BaseException | None = None
    # With tracing on, where this execution's span is parented (runtime.tracing): a recorded
    # carrier, an OpenTelemetry context, or tracing.FROM_ROW (the row's, read at the span).
    trace_parent: Any = None

    def next_function_id(self) -> int:
        """Take the next step position (1, 2, 3, ...), or the next one reserved for this thread
        (:func:`reserve_positions`: an ``_async`` call takes its positions on the event loop,
        in call order, then runs in a worker thread)."""
        reserved = _reserved.get()
        if reserved is not None and reserved[0] is self and reserved[1]:
            return reserved[1].pop(0)
        self._last_function_id += 1
        return self._last_function_id

    def reserve_positions(self, count: int) -> list[int]:
        """Take the next ``count`` positions now (see :func:`use_reserved_positions`)."""
        return [self.next_function_id() for _ in range(count)]

    @property
    def step_id(self) -> int | None:
        """The position of the step of this workflow running in this thread or task, if any.

        Kept in a context variable, not on the context object: the async steps of one workflow
        may run at once (``asyncio.gather``), each in its own task, and each is "in a step"
        only for itself."""
        running = _running_step.get()
        return running[1] if running is not None and running[0] is self else None

    @step_id.setter
    def step_id(self, function_id: int | None) -> None:
        _running_step.set(None if function_id is None else (self, function_id))

    def peek_function_id(self) -> int:
        """The position :meth:`next_function_id` would take, without taking it (a patch marker
        takes it only if it is, or becomes, recorded there)."""
        reserved = _reserved.get()
        if reserved is not None and reserved[0] is self and reserved[1]:
            return reserved[1][0]
        return self._last_function_id + 1

    def recorded_step(self, function_id: int) -> StepRow | None:
        if self.recorded is None:
            return None
        return self.recorded.get(function_id)

    @property
    def in_step(self) -> bool:
        return self.step_id is not None

    def refuse_workflow_start(self, action: str, workflow_name: str | None) -> None:
        """DBOS's rule: a step or a transaction starts, calls or enqueues no workflow (DBOS
        fails an assert). The child's position would be taken inside an operation whose replay
        returns its recorded outcome without running the body, so every later position would
        shift on recovery; and a start from a transaction would not roll back with it. Raises
        ``DBOSException`` naming the workflow and where it was called."""
        where = "a step" if self.in_step else "a transaction" if self.in_transaction else None
        if where is not None:
            raise DBOSException(f"cannot {action} workflow {workflow_name!r} from inside {where}")



_current: contextvars.ContextVar[WorkflowContext | None] = contextvars.ContextVar(
    "pgfleet_workflow", default=None
)
# The step running in this thread or task: (its workflow's context, its position).
_running_step: contextvars.ContextVar[tuple[WorkflowContext, int] | None] = contextvars.ContextVar(
    "pgfleet_running_step", default=None
)
# Positions an ``_async`` call reserved on the loop, used by the thread that runs it.
_reserved: contextvars.ContextVar[tuple[WorkflowContext, list[int]] | None] = contextvars.ContextVar(
    "pgfleet_reserved_positions", default=None
)


def use_reserved_positions(ctx: WorkflowContext, positions: list[int]) -> None:
    """In the (copied) context of a worker thread: the next positions ``ctx`` takes here are
    ``positions`` (reserved by :meth:`WorkflowContext.reserve_positions` on the loop)."""
    _reserved.set((ctx, list(positions)))


# The connection of the ``@DBOS.transaction`` running in this thread (``DBOS.sql_session``).
sql_session: contextvars.ContextVar[Any] = contextvars.ContextVar("pgfleet_sql_session", default=None)


def current_workflow() -> WorkflowContext | None:
    """The workflow running in this thread, if any."""
    return _current.get()


def active_workflow() -> WorkflowContext | None:
    """The workflow whose body is running here (not one of its steps or transactions): where a
    call is a checkpointed operation rather than a plain one."""
    ctx = _current.get()
    if ctx is None or ctx.in_step or ctx.in_transaction:
        return None
    return ctx


@dataclass(frozen=True)
class WorkflowEntry:
    """What :func:`enter_workflow` changed, for :func:`leave_workflow` to restore."""

    workflow: contextvars.Token[WorkflowContext | None]
    options: contextvars.Token[StartOptions | None]


def enter_workflow(ctx: WorkflowContext) -> WorkflowEntry:
    """Make ``ctx`` the running workflow of this thread or task. The start options its caller
    set for it are not its children's, as in DBOS: a timeout (the children inherit the deadline
    through ``ctx`` instead), a deduplication id or policy, a priority. A body called directly
    inside ``with SetWorkflowTimeout(...)`` otherwise gave each child a deadline of its own."""
    options = _options.get()
    for_children = None if options is None else replace(
        options, timeout_sec=None, timeout_set=False, deduplication_id=None, duplication_policy=None, priority=None
    )
    return WorkflowEntry(_current.set(ctx), _options.set(for_children))


def leave_workflow(entry: WorkflowEntry) -> None:
    _options.reset(entry.options)
    _current.reset(entry.workflow)


@dataclass
class DBOSContext:
    """What ``DBOS.get_context()`` returns: the metadata of the running workflow (or of the
    caller, outside a workflow)."""

    workflow_id: str | None
    step_id: int | None
    executor_id: str | None
    authenticated_user: str | None
    authenticated_roles: list[str] | None
    assumed_role: str | None
    workflow_deadline_epoch_ms: int | None


# -- options for the next workflow start, set with ``with`` blocks --------------------------


@dataclass
class StartOptions:
    """Options the caller set for the next workflow it starts in this thread."""

    workflow_id: str | None = None
    timeout_sec: float | None = None
    timeout_set: bool = False
    authenticated_user: str | None = None
    authenticated_roles: list[str] | None = None
    assumed_role: str | None = None
    deduplication_id: str | None = None
    priority: int | None = None
    app_version: str | None = None
    queue_partition_key: str | None = None
    delay_seconds: float | None = None
    duplication_policy: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_options: contextvars.ContextVar[StartOptions | None] = contextvars.ContextVar(
    "pgfleet_start_options", default=None
)


def carry_back_start_options(context: contextvars.Context) -> None:
    """After a call ran in ``context`` (a copy of this one, in a worker thread): keep the start
    options it left (a ``SetWorkflowID`` is consumed by the first start, wherever it ran)."""
    left = context.get(_options)
    if left is not _options.get():
        _options.set(left)


def local_start_options() -> StartOptions | None:
    """The options of the innermost ``with`` block of this thread (DBOS's "local context"
    outside a workflow), or None outside every block."""
    return _options.get()


def peek_start_options() -> StartOptions:
    return _options.get() or StartOptions()


def take_start_options() -> StartOptions:
    """The options for this start. The workflow id is consumed: only the first workflow started
    inside a ``SetWorkflowID`` block gets it."""
    options = _options.get()
    if options is None:
        return StartOptions()
    if options.workflow_id is not None:
        consumed = StartOptions(**{**options.__dict__, "workflow_id": None})
        _options.set(consumed)
    return options


class _OptionsBlock:
    """A ``with`` block that overlays some start options and restores the previous ones."""

    def __init__(self, **changes: Any) -> None:
        self._changes = changes
        self._token: contextvars.Token[StartOptions | None] | None = None

    def __enter__(self) -> _OptionsBlock:
        base = _options.get() or StartOptions()
        self._token = _options.set(StartOptions(**{**base.__dict__, **self._changes}))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._token is not None
        _options.reset(self._token)
