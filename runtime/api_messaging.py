"""``DBOS``'s messaging, events, streams and steps API beyond the basics: ``send`` with DBOS
2.30's parameters, ``send_bulk``, ``get_all_events``, ``read_stream`` from an offset,
``wait_first``, ``run_step`` and ``step_status`` (a mixin of :class:`runtime.dbos.DBOS`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any, TypedDict, TypeVar

from . import messages as messaging
from . import steps, streams, waiting
from .context import current_workflow
from .current import executor_for
from .dbos_properties import classproperty
from .decorators import step_entry
from .errors import DBOSException
from .executor import Executor
from .handles import WorkflowHandle
from .on_loop import refuse_on_loop, refusing_on_loop
from .operations import ExecutorShutdown
from .registry import RegisteredStep
from .serializers import WorkflowSerializationFormat
from .step_status import StepStatus, current_step_status

__all__ = ["MessagingAPI", "StepOptions", "step_of_options"]

R = TypeVar("R")


class StepOptions(TypedDict, total=False):
    """How ``DBOS.run_step`` runs its function (the settings of ``@DBOS.step()``): ``name``
    (default: the function's qualified name), ``retries_allowed``, ``interval_seconds``,
    ``max_attempts``, ``backoff_rate``, ``should_retry`` and ``preemptible`` (async steps only)."""

    name: str | None
    retries_allowed: bool
    interval_seconds: float
    max_attempts: int
    backoff_rate: float
    should_retry: Callable[[BaseException], bool] | None
    preemptible: bool


_STEP_DEFAULTS: StepOptions = {
    "name": None,
    "retries_allowed": False,
    "interval_seconds": 1.0,
    "max_attempts": 3,
    "backoff_rate": 2.0,
    "should_retry": None,
    "preemptible": False,
}


def step_of_options(dbos_step_options: StepOptions | None, func: Callable[..., Any]) -> RegisteredStep:
    """The step ``DBOS.run_step`` / ``run_step_async`` makes of ``func``: ``@DBOS.step()``'s
    defaults overlaid with ``dbos_step_options`` (an unknown key is refused)."""
    unknown = set(dbos_step_options or {}) - set(_STEP_DEFAULTS)
    if unknown:
        raise DBOSException(f"unknown StepOptions key(s): {', '.join(sorted(unknown))}")
    settings: dict[str, Any] = {**_STEP_DEFAULTS, **(dbos_step_options or {})}
    return step_entry(func, **settings)


def _executor(what: str) -> Executor:
    return executor_for(what)


class MessagingAPI:
    """Class methods of ``DBOS`` for messages, events, streams and steps run by call."""

    @classmethod
    def send(
        cls,
        destination_id: str,
        message: Any,
        topic: str | None = None,
        *,
        idempotency_key: str | None = None,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """Send a message to a workflow; from a workflow body it is sent exactly once.
        ``idempotency_key`` makes any send deliver once per destination; ``send_to_forks`` also
        delivers it to every workflow forked (recursively) from the destination."""
        refuse_on_loop("DBOS.send")
        messaging.send_bulk(
            _executor("DBOS.send"), [messaging.SendMessage(destination_id, message, topic, idempotency_key)],
            function_name="DBOS.send", serialization_type=serialization_type, send_to_forks=send_to_forks,
        )

    @classmethod
    def send_bulk(
        cls,
        messages: list[messaging.SendMessage],
        *,
        serialization_type: WorkflowSerializationFormat | None = WorkflowSerializationFormat.DEFAULT,
        send_to_forks: bool = False,
    ) -> None:
        """Send many messages in one transaction (one ``DBOS.send_bulk`` step in a workflow)."""
        refuse_on_loop("DBOS.send_bulk")
        messaging.send_bulk(
            _executor("DBOS.send_bulk"), messages, function_name="DBOS.send_bulk",
            serialization_type=serialization_type, send_to_forks=send_to_forks,
        )

    @classmethod
    def get_all_events(cls, workflow_id: str) -> dict[str, Any]:
        """Every event a workflow has set, with its latest value ({} if none)."""
        refuse_on_loop("DBOS.get_all_events")
        return messaging.get_all_events(_executor("DBOS.get_all_events"), workflow_id)

    @classmethod
    def read_stream(cls, workflow_id: str, key: str, *, offset: int = 0) -> Iterator[Any]:
        """Yield a workflow's stream values in order from ``offset`` until the stream is closed
        or the workflow ends (``DBOSNonExistentWorkflowError`` for an unknown workflow)."""
        executor = _executor("DBOS.read_stream")
        values = streams.read_stream(executor, workflow_id, key, offset=offset, stop=executor.stop_event)
        return refusing_on_loop("DBOS.read_stream", values)  # refused at the first read, as DBOS's generator is

    @classmethod
    def wait_first(
        cls, handles: list[WorkflowHandle[Any]], *, polling_interval_sec: float = waiting.DEFAULT_POLLING_INTERVAL_SEC
    ) -> WorkflowHandle[Any]:
        """Wait until one of the handles' workflows finishes and return its handle (recorded
        as ``DBOS.waitFirst`` in a workflow body, so a replay returns the same one)."""
        refuse_on_loop("DBOS.wait_first")
        executor = _executor("DBOS.wait_first")
        ctx = current_workflow()

        def check() -> None:
            if ctx is not None and not ctx.in_step:  # a waiting workflow still stops at its deadline
                executor.check_running(ctx)

        return waiting.wait_first(executor, handles, polling_interval_sec, executor.stop_event, ExecutorShutdown, check)

    @classmethod
    def run_step(cls, dbos_step_options: StepOptions | None, func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Call ``func(*args, **kwargs)`` as a checkpointed step of the calling workflow, with
        ``@DBOS.step()``'s settings from ``dbos_step_options``; outside a workflow (or inside a
        step) a plain call."""
        refuse_on_loop("DBOS.run_step")
        entry = step_of_options(dbos_step_options, func)
        if entry.is_async:
            # DBOS runs an async function to its end on a loop while this thread waits: here a
            # loop of this call's own (an awaited step inside a workflow, else a plain call).
            from .dbos import DBOS  # the facade, whose run_step_async this mixin's run_step shares

            value: R = asyncio.run(DBOS.run_step_async(dbos_step_options, func, *args, **kwargs))
            return value
        ctx = current_workflow()
        if ctx is None:
            return func(*args, **kwargs)
        value = steps.run_step(ctx.executor, entry, args, kwargs)
        return value

    @classproperty
    def step_status(cls) -> StepStatus | None:
        """The running step's position and attempt (None outside a step, and in a transaction)."""
        ctx = current_workflow()
        if ctx is None or ctx.in_transaction:
            return None
        return current_step_status()
