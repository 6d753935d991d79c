"""The decorators behind ``@DBOS.workflow()``, ``@DBOS.step()``, ``@DBOS.transaction()``,
``@DBOS.scheduled()`` and ``@DBOS.dbos_class()``.

Each registers the function in a :class:`~runtime.registry.Registry` (so it works before any
``DBOS()`` exists, and after ``launch()``) and wraps it. A call of the wrapper goes to the
executor that runs the calling workflow, or outside a workflow to the current process's
(:func:`runtime.current.executor_for`): a workflow call starts it there
(:func:`runtime.starts.start_workflow`), a step call inside a workflow runs it as a checkpointed
step (:func:`runtime.steps.run_step`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from . import roles, scheduler
from .async_starts import start_workflow_async
from .async_steps import run_step_async
from .context import current_workflow
from .current import current_process, executor_for
from .errors import DBOSException
from .registry import (
    CLASS_METHOD,
    DEFAULT_MAX_RECOVERY_ATTEMPTS,
    INSTANCE_METHOD,
    PLAIN,
    TEMP_WORKFLOW_PREFIX,
    RegisteredStep,
    RegisteredWorkflow,
    Registry,
    method_kind,
    split_bound,
)
from .serialization import format_for
from .starts import start_workflow
from .steps import run_step
from .tracing import traced, tracing_enabled
from .transactions import run_transaction, warn_if_on_loop
from .validation import make_pydantic_args_validator, pydantic_args_validator

__all__ = ["workflow", "step", "transaction", "scheduled", "dbos_class", "ISOLATION_LEVELS"]

F = TypeVar("F", bound=Callable[..., Any])


ISOLATION_LEVELS = {"SERIALIZABLE", "REPEATABLE READ", "READ COMMITTED", "READ UNCOMMITTED"}


def workflow(
    registry: Registry,
    name: str | None,
    max_recovery_attempts: int | None,
    validator: Callable[..., Any] | None,
    *,
    serialization_type: Any = None,
    validate_args: Callable[..., Any] | None = None,
) -> Callable[[F], F]:
    """``@DBOS.workflow()``: a call starts the workflow and returns its result.

    ``validator`` is pgfleet's ``validate_input`` (checks the arguments of every start);
    ``validate_args`` is DBOS's (coerces the arguments read back from the row), and
    :data:`runtime.validation.pydantic_args_validator` there stands for one built from the
    function's type hints."""
    if max_recovery_attempts is not None and (not isinstance(max_recovery_attempts, int) or max_recovery_attempts < 0):
        raise DBOSException(f"max_recovery_attempts must be a non-negative integer, got {max_recovery_attempts!r}")
    format_for(serialization_type)  # a bad serialization_type fails at decoration, not at the first start
    if validate_args is not None and not callable(validate_args):
        raise DBOSException(f"validate_args must be a callable (args, kwargs) -> (args, kwargs), got {validate_args!r}")

    def decorator(func: F) -> F:
        entry = RegisteredWorkflow(
            name=name or func.__qualname__,
            func=func,
            max_recovery_attempts=max_recovery_attempts,
            validate_input=validator,
            kind=method_kind(func),
            serialization_type=serialization_type,
            validate_args=make_pydantic_args_validator(func) if validate_args is pydantic_args_validator else validate_args,
        )
        registry.add_workflow(entry)
        if entry.is_async:
            return _async_workflow_wrapper(entry)  # type: ignore[return-value]  # stands for func's signature

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            executor = executor_for(f"workflow {entry.name!r}")
            bound, rest = split_bound(entry, args)
            with roles.assumed(entry.func, entry.name):  # a refused direct call records nothing
                return start_workflow(executor, entry, bound, rest, kwargs, background=False)

        wrapper.__pgfleet_workflow__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function
        return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

    return decorator


def _async_workflow_wrapper(entry: RegisteredWorkflow) -> Callable[..., Any]:
    """An ``async def`` workflow's wrapper: awaiting a call runs the workflow on the caller's
    loop (:func:`runtime.async_starts.start_workflow_async`)."""

    @functools.wraps(entry.func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        executor = executor_for(f"workflow {entry.name!r}")
        bound, rest = split_bound(entry, args)
        with roles.assumed(entry.func, entry.name):
            return await start_workflow_async(executor, entry, bound, rest, kwargs, background=False)

    wrapper.__pgfleet_workflow__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function
    return wrapper


def step_entry(
    func: Callable[..., Any],
    name: str | None,
    retries_allowed: bool,
    interval_seconds: float,
    max_attempts: int,
    backoff_rate: float,
    should_retry: Callable[[BaseException], bool] | None,
    preemptible: bool,
) -> RegisteredStep:
    """A step's settings, checked (``@DBOS.step()`` and ``DBOS.run_step``'s ``StepOptions``)."""
    _check_retry_settings(interval_seconds, max_attempts, backoff_rate)
    step_name = name or func.__qualname__
    if preemptible and not inspect.iscoroutinefunction(func):
        # DBOS's text: only an async step can be cut short by its workflow's cancellation.
        raise DBOSException(
            f"Step {step_name} is sync but preemptible=True. Preemption is only supported for async steps."
        )
    return RegisteredStep(
        name=step_name,
        func=func,
        retries_allowed=retries_allowed,
        interval_seconds=interval_seconds,
        max_attempts=max_attempts if retries_allowed else 1,
        backoff_rate=backoff_rate,
        should_retry=should_retry,
        preemptible=preemptible,
    )


def step(registry: Registry, **settings: Any) -> Callable[[F], F]:
    """``@DBOS.step()``: inside a workflow a checkpointed step; elsewhere a plain call.
    ``settings`` are :func:`step_entry`'s (``name``, ``retries_allowed`` ...)."""
    # Bad retry settings fail when the decorator is made, before it is applied.
    _check_retry_settings(settings["interval_seconds"], settings["max_attempts"], settings["backoff_rate"])

    def decorator(func: F) -> F:
        entry = step_entry(func, **settings)
        registry.add_step(entry)
        if entry.is_async:
            async_wrapper = _async_step_wrapper(entry)
            _runnable_as_workflow(registry, entry.name, func, async_wrapper)
            return async_wrapper  # type: ignore[return-value]  # stands for func's signature

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = current_workflow()
            if not roles.requires_roles(func) and not tracing_enabled():
                # The hot path: no role to check or assume and no span to open.
                return func(*args, **kwargs) if ctx is None else run_step(ctx.executor, entry, args, kwargs)
            with roles.assumed(func, entry.name):  # a refused step records nothing
                if ctx is None:
                    return func(*args, **kwargs)
                with traced(entry.name, "step"):
                    return run_step(ctx.executor, entry, args, kwargs)

        wrapper.__pgfleet_step__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function
        _runnable_as_workflow(registry, entry.name, func, wrapper)
        return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

    return decorator


def _async_step_wrapper(entry: RegisteredStep) -> Callable[..., Any]:
    """An ``async def`` step's wrapper: awaited inside a workflow it is a checkpointed step
    (:func:`runtime.async_steps.run_step_async`), elsewhere a plain call."""
    func = entry.func

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = current_workflow()
        with roles.assumed(func, entry.name):  # a refused step records nothing
            if ctx is None:
                return await func(*args, **kwargs)
            with traced(entry.name, "step"):
                return await run_step_async(ctx.executor, entry, args, kwargs)

    wrapper.__pgfleet_step__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function
    return wrapper


def _check_retry_settings(interval_seconds: float, max_attempts: int, backoff_rate: float) -> None:
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise DBOSException(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
    if interval_seconds < 0 or backoff_rate <= 0:
        raise DBOSException("interval_seconds must be >= 0 and backoff_rate > 0")


def transaction(registry: Registry, isolation_level: str, name: str | None) -> Callable[[F], F]:
    """``@DBOS.transaction()``: the body runs in a database transaction, checkpointed with it
    (:func:`runtime.transactions.run_transaction`)."""
    level = isolation_level.upper()
    if level not in ISOLATION_LEVELS:
        raise DBOSException(f"isolation_level must be one of {sorted(ISOLATION_LEVELS)}, got {isolation_level!r}")

    def decorator(func: F) -> F:
        if inspect.iscoroutinefunction(func):  # DBOS's words
            raise DBOSException(
                f"Function {name or func.__qualname__} is a coroutine function, but DBOS.transaction does not support coroutine functions"
            )
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
            executor = executor_for(f"transaction {entry.name!r}")
            warn_if_on_loop(entry.name)
            if current_workflow() is None:
                # Called outside a workflow, DBOS runs it as its one-step <temp> workflow.
                temp: RegisteredWorkflow = wrapper.__pgfleet_workflow__  # type: ignore[attr-defined]
                bound, rest = split_bound(temp, args)
                return start_workflow(executor, temp, bound, rest, kwargs, background=False)
            with roles.assumed(func, entry.name), traced(entry.name, "transaction"):
                return run_transaction(executor, entry, level, args, kwargs)

        _runnable_as_workflow(registry, entry.name, func, wrapper)
        return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

    return decorator


def _runnable_as_workflow(registry: Registry, step_name: str, func: Callable[..., Any], wrapper: Callable[..., Any]) -> None:
    """Let ``DBOS.start_workflow``, ``Queue.enqueue`` and ``@DBOS.scheduled`` take a step or a
    transaction, as DBOS does: it runs as a workflow of one step, named ``<temp>.<step name>``.
    Registered now, under that name, so that recovery and queue claiming in any process that
    imports the step find it; its body is the step's wrapper, which inside the workflow runs
    (and records) the step."""
    entry = RegisteredWorkflow(
        name=TEMP_WORKFLOW_PREFIX + step_name,
        func=wrapper,
        max_recovery_attempts=DEFAULT_MAX_RECOVERY_ATTEMPTS,
        validate_input=None,
        kind=method_kind(func),
    )
    registry.add_workflow(entry)
    wrapper.__pgfleet_workflow__ = entry  # type: ignore[attr-defined]  # a marker attribute on the function


def scheduled(registry: Registry, cron: str) -> Callable[[F], F]:
    """``@DBOS.scheduled(cron)``, above ``@DBOS.workflow()``."""

    def decorator(func: F) -> F:
        entry = getattr(func, "__pgfleet_workflow__", None)
        if not isinstance(entry, RegisteredWorkflow):
            raise DBOSException(
                f"@DBOS.scheduled goes above @DBOS.workflow() (or a step): {getattr(func, '__qualname__', func)} is not a workflow"
            )
        scheduler.add_schedule(registry, entry.name, cron)
        process = current_process()
        if process is not None and process.launched:  # decorated after launch
            process.declare_schedules(lambda name: name == entry.name)
        return func

    return decorator


def dbos_class(registry: Registry, class_name: str | None) -> Callable[[type], type]:
    """``@DBOS.dbos_class()``: settles which of the class's workflows are methods of which kind."""

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
