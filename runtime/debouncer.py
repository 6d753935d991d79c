"""``Debouncer`` and ``DebouncerClient``: debouncing workflow starts, as DBOS 2.x does.

``debouncer.debounce(key, period, *args)`` starts the workflow ``period`` seconds from now,
unless another debounce of the same key comes first: then that one's wait starts again, with
the newest arguments, until a quiet ``period`` passes (or ``debounce_timeout_sec`` since the
first debounce, if set). The workflow runs once per burst, with the last arguments.

Built on the queue machinery, so it holds across the fleet: a debounced workflow is a DELAYED
workflow on a queue (the internal one by default) whose deduplication id is
``<workflow name>-<key>`` and whose ``is_debounced`` flag is set. A debounce first pushes such
a workflow back (``db.debounces.bounce``: one statement, on the database clock); when none holds
the key it enqueues a fresh one, and the unique index on (queue, deduplication id) lets exactly
one of two executors racing on a key create it: the loser bounces the winner's. The leader's
promotion out of DELAYED clears the key, after which a debounce starts a new burst. Inside a
workflow the bounce commits with its fenced step (``DBOS.debounce_delayed_workflow``) and the
enqueue with its fenced child step, so a recovered or taken-over workflow never debounces twice.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, cast

from sysdb.debounces import Bounce, BounceResult
from sysdb.errors import DeduplicatedError
from sysdb.workflow_rows import QueuePlacement

from .aio import in_thread
from .context import StartOptions, current_workflow, peek_start_options, take_start_options
from .current import executor_for
from .errors import DBOSException, DBOSQueueDeduplicatedError
from .handles import WorkflowHandle, WorkflowHandleAsync
from .operations import NOT_RECORDED, fenced_step
from .queues import INTERNAL_QUEUE_NAME, Queue
from .registry import RegisteredWorkflow, registry, workflow_of
from .serialization import (
    default_format,
    deserialize,
    deserialize_exception,
    format_for,
    serialize,
    serialize_args,
    serialize_exception,
)
from .starts import check_same_workflow
from .workflow_start import call_start, take_start_position

if TYPE_CHECKING:
    from .client import DBOSClient, EnqueueOptions
    from .executor import Executor

__all__ = ["Debouncer", "DebouncerClient", "BOUNCE_STEP"]

P = ParamSpec("P")
R = TypeVar("R", covariant=True)

# The operation a bounce inside a workflow records (DBOS's name).
BOUNCE_STEP = "DBOS.debounce_delayed_workflow"
_Action = Literal["return", "enqueue", "raise", "retry"]


def _queue_name(queue: Queue | str | None) -> str | None:
    return queue.name if isinstance(queue, Queue) else queue


def _reject_conflicting(*, dedup: bool, delay: bool, priority: bool, partition: bool, return_existing: bool) -> None:
    """A debounce owns the workflow's deduplication id (the key) and its delay (the period);
    priority and partitions cannot apply to it. DBOS's texts."""
    for conflict, text in (
        (dedup, "Cannot debounce a workflow with a deduplication_id set: the debounce key is used as the workflow's deduplication ID."),
        (delay, "Cannot debounce a workflow with a delay set: the debounce period controls the workflow's delay."),
        (priority, "Cannot debounce a workflow with a priority set: priority is not supported for debounced workflows."),
        (partition, "Cannot debounce a workflow with a queue partition key set: partitioned queues do not support deduplication, which debouncing requires."),
        (return_existing, "Cannot debounce a workflow with duplication_policy 'return-existing': a debounce owns the workflow's deduplication behavior."),
    ):
        if conflict:
            raise DBOSException(text)


def _classify(result: BounceResult, workflow_name: str, target_app: str | None) -> _Action:
    """What a debounce does after a bounce: return the bounced workflow, enqueue a fresh one
    (the key is free), raise (a non-debounced holder, another workflow's or application's key),
    or retry (a debounced holder left DELAYED just now)."""
    if result.bounced_workflow_id is not None:
        return "return"
    if result.holder_workflow_id is None:
        return "enqueue"
    if not result.holder_is_debounced or result.holder_workflow_name != workflow_name:
        return "raise"
    holder_app = result.holder_application_name
    if target_app is not None and holder_app is not None and holder_app != target_app:
        return "raise"
    return "retry"


def _timing(now_ms: int, period_sec: float, timeout_sec: float | None) -> tuple[int, int | None]:
    """A fresh debounced workflow's wake-up time and deadline (epoch ms, database clock)."""
    deadline = now_ms + int(timeout_sec * 1000) if timeout_sec else None
    wake = now_ms + int(period_sec * 1000)
    return (min(wake, deadline) if deadline is not None else wake), deadline


def _debounce_loop(
    workflow_name: str,
    queue_name: str,
    deduplication_id: str,
    target_app: str | None,
    bounce: Callable[[], BounceResult],
    enqueue: Callable[[], str],
) -> str:
    """Bounce, else enqueue, until one wins; the id of the workflow that will run."""
    while True:
        result = bounce()
        action = _classify(result, workflow_name, target_app)
        if action == "return":
            assert result.bounced_workflow_id is not None
            return result.bounced_workflow_id
        if action == "raise":
            assert result.holder_workflow_id is not None
            raise DBOSQueueDeduplicatedError(result.holder_workflow_id, queue_name, deduplication_id)
        if action == "retry":
            continue
        try:
            return enqueue()
        except DBOSQueueDeduplicatedError:
            continue  # another debounce took the key between the bounce and the enqueue: bounce it


class Debouncer(Generic[P, R]):
    """Debounces starts of one workflow (see the module's docstring)."""

    def __init__(
        self,
        workflow_name: str,
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> None:
        self.func_name = workflow_name
        self.options: dict[str, Any] = {
            "debounce_timeout_sec": debounce_timeout_sec,
            "queue_name": _queue_name(queue),
            "workflow_name": workflow_name,
            "application_name": application_name,
        }

    @staticmethod
    def create(
        workflow: Callable[P, R],
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> Debouncer[P, R]:
        """A debouncer of a ``@DBOS.workflow()`` function (not of a bound method)."""
        if isinstance(workflow, types.MethodType):
            raise TypeError("Only workflow functions may be debounced, not methods")
        entry, _ = workflow_of(workflow)
        return Debouncer(entry.name, debounce_timeout_sec=debounce_timeout_sec, queue=queue, application_name=application_name)

    @staticmethod
    def create_async(
        workflow: Callable[P, Coroutine[Any, Any, R]],
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> Debouncer[P, R]:
        """``create`` for an async workflow function."""
        return Debouncer.create(
            workflow, debounce_timeout_sec=debounce_timeout_sec, queue=queue, application_name=application_name  # type: ignore[arg-type]
        )

    def debounce(self, debounce_key: str, debounce_period_sec: float, *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Start the workflow after ``debounce_period_sec`` of quiet on ``debounce_key``; the
        handle names the workflow that will run (with the last debounce's arguments)."""
        name = self.options["workflow_name"]
        executor = executor_for(f"debounce of workflow {name!r}")
        options = peek_start_options()
        _reject_conflicting(
            dedup=options.deduplication_id is not None, delay=options.delay_seconds is not None,
            priority=options.priority is not None, partition=options.queue_partition_key is not None,
            return_existing=getattr(options, "duplication_policy", None) == "return-existing",
        )
        # A SetWorkflowID id is taken once (it must not stay armed when the debounce coalesces)
        # and given to every enqueue attempt.
        pinned = take_start_options().workflow_id
        queue_name = self.options["queue_name"]
        declared = registry.queue(queue_name) if queue_name else None
        if queue_name and declared is None:
            raise Exception(f"Invalid queue name provided to debouncer: {queue_name}")
        if declared is not None and declared.partition_queue:  # its claimers take keyed work only
            raise DBOSException(
                f"Cannot debounce onto partitioned queue {queue_name}: partitioned queues do not support "
                "deduplication, which debouncing requires."
            )
        entry = registry.workflow(name)
        if entry is None:
            raise Exception(f"Invalid workflow name provided to debouncer: {name}")
        queue_name = queue_name or INTERNAL_QUEUE_NAME
        key = f"{name}-{debounce_key}"
        target_app = self.options["application_name"] or executor.config.name
        timeout = self.options["debounce_timeout_sec"]
        # In the workflow's own format, as its first enqueue writes them.
        fmt = format_for(entry.serialization_type)
        inputs = serialize_args(tuple(args), dict(kwargs), workflow_name=name, fmt=fmt)

        def bounce() -> BounceResult:
            wake = executor.db.clock.now_ms() + int(debounce_period_sec * 1000)
            return _bounce(executor, Bounce(name, queue_name, key, wake, inputs, fmt, target_app))

        def enqueue() -> str:
            wake, deadline = _timing(executor.db.clock.now_ms(), debounce_period_sec, timeout)
            placement = QueuePlacement(queue_name, key, delay_until_ms=wake, is_debounced=True, debounce_deadline_ms=deadline)
            return _enqueue(executor, entry, tuple(args), dict(kwargs), dataclasses.replace(options, workflow_id=pinned), placement)

        return WorkflowHandle(_debounce_loop(name, queue_name, key, target_app, bounce, enqueue), source=executor)

    async def debounce_async(
        self, debounce_key: str, debounce_period_sec: float, *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]:
        """``debounce`` for asyncio code (in the executor's worker threads, consuming a
        ``SetWorkflowID`` as ``debounce`` does; its positions are taken there, as DBOS takes them)."""
        work = executor_for("Debouncer.debounce_async").async_work
        handle = await in_thread(work, functools.partial(self.debounce, debounce_key, debounce_period_sec, *args, **kwargs))
        return WorkflowHandleAsync.of(handle)


def _bounce(executor: Executor, bounce: Bounce) -> BounceResult:
    """One bounce; inside a workflow a checkpointed operation committed with its effect."""
    ctx = current_workflow()
    if ctx is None or ctx.in_step:
        return executor.db.debounces.bounce(bounce)
    function_id, recorded = executor.begin_operation(ctx, BOUNCE_STEP)
    if recorded is not NOT_RECORDED:
        return BounceResult(**recorded)
    # Recorded as a plain dict (DBOS's DebounceResult), in the format of the process's
    # serializer, which need not know pgfleet's classes.
    step = fenced_step(ctx, function_id, BOUNCE_STEP, serialization=default_format())
    with executor.fenced_write(ctx):
        return executor.db.debounces.bounce(
            bounce,
            lambda result: dataclasses.replace(step, output=serialize(dataclasses.asdict(result))),
            lambda row: BounceResult(**deserialize(row.output, row.serialization)),
        )


def _enqueue(
    executor: Executor,
    entry: RegisteredWorkflow,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: StartOptions,
    placement: QueuePlacement,
) -> str:
    """Enqueue a fresh debounced workflow (inside a workflow, as its fenced child step). Its
    deadline is not inherited from a calling workflow: the debounce delay may outlast it."""
    parent = current_workflow()
    if parent is not None and parent.in_step:
        parent = None
    position = take_start_position(parent, options, entry)
    if parent is not None and position.replayed_child is not None:
        recorded = parent.recorded_step(position.function_id or 0)
        if recorded is not None and recorded.error is not None:  # a lost race, recorded
            raise deserialize_exception(recorded.error, recorded.serialization)
        return position.replayed_child
    workflow_id = position.workflow_id
    timeout_ms = int(options.timeout_sec * 1000) if options.timeout_set and options.timeout_sec else None
    start = dataclasses.replace(
        call_start(entry, None, args, kwargs, options, parent, workflow_id, executor.config.name),
        application_version=options.app_version or executor.config.application_version,
        timeout_ms=timeout_ms,
        placement=placement,
    )
    step = None
    if parent is not None and position.function_id is not None:
        step = fenced_step(parent, position.function_id, entry.name, child_workflow_id=workflow_id)
    try:
        with executor.fenced_write(parent):
            inserted = executor.db.workflows.enqueue(start.new_workflow(), placement, step)
    except DeduplicatedError as exc:
        lost = DBOSQueueDeduplicatedError(workflow_id, placement.queue_name, exc.deduplication_id)
        if parent is not None and position.function_id is not None:  # so a replay loses the same way
            executor.checkpoint(parent, position.function_id, entry.name, error=serialize_exception(lost))
        raise lost from None
    if not inserted:
        check_same_workflow(executor, workflow_id, entry, start.class_name, start.config_name)
    return workflow_id


class DebouncerClient:
    """Debouncing from a ``DBOSClient`` (a process that runs no workflows): ``workflow_options``
    are the ``EnqueueOptions`` of the debounced workflow (``workflow_name``, ``queue_name`` ...)."""

    def __init__(
        self,
        client: DBOSClient,
        workflow_options: EnqueueOptions,
        *,
        debounce_timeout_sec: float | None = None,
        queue: Queue | str | None = None,
        application_name: str | None = None,
    ) -> None:
        self.client = client
        self.workflow_options = workflow_options
        self.debouncer_options: dict[str, Any] = {
            "debounce_timeout_sec": debounce_timeout_sec,
            "queue_name": _queue_name(queue),
            "workflow_name": workflow_options["workflow_name"],
            "application_name": application_name,
        }

    def debounce(self, debounce_key: str, debounce_period_sec: float, *args: Any, **kwargs: Any) -> WorkflowHandle[Any]:
        """As ``Debouncer.debounce``, from the client."""
        wo: dict[str, Any] = dict(self.workflow_options)
        _reject_conflicting(
            dedup=wo.get("deduplication_id") is not None, delay=wo.get("delay_seconds") is not None,
            priority=wo.get("priority") is not None, partition=wo.get("queue_partition_key") is not None,
            return_existing=wo.get("duplication_policy") == "return-existing",
        )
        name = self.debouncer_options["workflow_name"]
        queue_name = self.debouncer_options["queue_name"] or wo["queue_name"]
        key = f"{name}-{debounce_key}"
        client = self.client
        target_app = self.debouncer_options["application_name"] or wo.get("application_name") or client._application_name
        timeout = self.debouncer_options["debounce_timeout_sec"]
        db = client._db
        fmt = format_for(wo.get("serialization_type"))
        inputs = serialize_args(args, kwargs, workflow_name=name, fmt=fmt)

        def bounce() -> BounceResult:
            wake = db.clock.now_ms() + int(debounce_period_sec * 1000)
            return db.debounces.bounce(Bounce(name, queue_name, key, wake, inputs, fmt, target_app))

        def enqueue() -> str:
            wake, deadline = _timing(db.clock.now_ms(), debounce_period_sec, timeout)
            placement = QueuePlacement(queue_name, key, delay_until_ms=wake, is_debounced=True, debounce_deadline_ms=deadline)
            enqueue_options = cast("EnqueueOptions", {**wo, "queue_name": queue_name})
            start = dataclasses.replace(client._start(enqueue_options, args, kwargs), placement=placement)
            try:
                db.workflows.enqueue(start.new_workflow(), placement)
            except DeduplicatedError as exc:
                raise DBOSQueueDeduplicatedError(start.workflow_id, queue_name, exc.deduplication_id) from None
            return start.workflow_id

        return WorkflowHandle(_debounce_loop(name, queue_name, key, target_app, bounce, enqueue), source=client)

    async def debounce_async(self, debounce_key: str, debounce_period_sec: float, *args: Any, **kwargs: Any) -> WorkflowHandleAsync[Any]:
        """``debounce`` for asyncio code, in the client's worker threads."""
        handle = await in_thread(self.client.async_work, functools.partial(self.debounce, debounce_key, debounce_period_sec, *args, **kwargs))
        return WorkflowHandleAsync.of(handle)
