"""Workflow arguments read back from a row, made whole again before the workflow runs on them.

When a workflow runs from its recorded row (recovery, a queue, a takeover) its arguments are the
deserialized inputs, not the caller's objects. In portable JSON a ``datetime`` comes back as
text: :func:`coerce_portable_args` turns it back per the function's type hints, as DBOS does.
A workflow's ``validate_args`` (DBOS's hook, ``(args, kwargs) -> (args, kwargs)``) replaces that
step; :func:`make_pydantic_args_validator` builds one from the type hints with pydantic, which is
imported only when one is built (pgfleet does not depend on it).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from .registry import PLAIN, RegisteredWorkflow
from .serialization import default_format
from .serializers import PORTABLE_JSON

__all__ = ["pydantic_args_validator", "make_pydantic_args_validator", "coerce_portable_args", "prepare_args", "ValidateArgs"]

ValidateArgs = Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def pydantic_args_validator(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Pass as ``@DBOS.workflow(validate_args=pydantic_args_validator)``: the decorator replaces
    it with :func:`make_pydantic_args_validator` of the function. Never called itself."""
    raise NotImplementedError(
        "pydantic_args_validator should not be called directly. "
        "Use make_pydantic_args_validator(func) to create a validator for a specific function."
    )


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:  # a hint naming something not importable here: use what is written
        return dict(getattr(func, "__annotations__", {}))


def _recorded_parameters(func: Callable[..., Any], skip_first: bool) -> list[inspect.Parameter]:
    """The parameters the recorded inputs fill: without ``self``/``cls`` for methods, whose
    bound object is not part of the inputs."""
    params = list(inspect.signature(func).parameters.values())
    return params[1:] if skip_first else params


def _is_method(func: Callable[..., Any]) -> bool:
    """Whether ``func`` is registered as an instance or class method workflow (known once
    ``@DBOS.dbos_class()`` ran, which is why validators look it up lazily)."""
    from .registry import registry

    for entry in list(registry.workflows.values()):
        if entry.func is func:
            return entry.kind != PLAIN
    return False


def make_pydantic_args_validator(func: Callable[..., Any]) -> ValidateArgs:
    """A ``validate_args`` that validates (and coerces) the arguments against ``func``'s type
    hints with pydantic >= 2; a failure raises ``ValueError`` listing every bad argument."""
    try:
        from pydantic import TypeAdapter, ValidationError
    except ImportError:
        raise ImportError(
            "pydantic is required for pydantic_args_validator. Install it with: pip install pydantic"
        ) from None

    adapters: list[tuple[str, Any, Any]] = []

    def build() -> None:
        hints = _hints(func)
        for param in _recorded_parameters(func, _is_method(func)):
            hint = hints.get(param.name)
            adapters.append((param.name, TypeAdapter(hint) if hint is not None else None, param.default))

    def validate(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        if not adapters:
            build()
        out_args, out_kwargs, errors = list(args), dict(kwargs), []
        for i, value in enumerate(out_args[: len(adapters)]):
            name, adapter, _ = adapters[i]
            if adapter is not None:
                try:
                    out_args[i] = adapter.validate_python(value)
                except ValidationError as exc:
                    errors.append(f"Argument '{name}' (position {i}): {exc}")
        by_name = {name: adapter for name, adapter, _ in adapters}
        for key, value in out_kwargs.items():
            adapter = by_name.get(key)
            if adapter is not None:
                try:
                    out_kwargs[key] = adapter.validate_python(value)
                except ValidationError as exc:
                    errors.append(f"Argument '{key}': {exc}")
        given = {adapters[i][0] for i in range(min(len(args), len(adapters)))} | set(kwargs)
        for name, _, default in adapters:
            if name not in given and default is inspect.Parameter.empty:
                errors.append(f"Missing required argument: '{name}'")
        if errors:
            raise ValueError("Argument validation failed for workflow:\n" + "\n".join(errors))
        return tuple(out_args), out_kwargs

    return validate


def _coerce(value: Any, hint: Any) -> Any:
    """A datetime or date recorded as text, back to the type its hint names (else as is)."""
    if not isinstance(value, str) or hint not in (datetime, date):
        return value
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment if hint is datetime else moment.date()


def coerce_portable_args(
    entry: RegisteredWorkflow, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments read back from portable JSON, with the datetimes and dates the workflow's
    type hints ask for turned back from their text."""
    hints = _hints(entry.func)
    if not hints:
        return args, kwargs
    try:
        params = _recorded_parameters(entry.func, entry.kind != PLAIN)
    except (TypeError, ValueError):
        return args, kwargs
    coerced = tuple(_coerce(v, hints.get(params[i].name)) if i < len(params) else v for i, v in enumerate(args))
    return coerced, {k: _coerce(v, hints.get(k)) for k, v in kwargs.items()}


def prepare_args(
    entry: RegisteredWorkflow, fmt: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments a workflow runs with when it runs from its row (format ``fmt``): its
    ``validate_args``'s, or else, for portable JSON, :func:`coerce_portable_args`'s. A
    ``validate_args`` that rejects them raises (the workflow's outcome, as in DBOS)."""
    if entry.validate_args is not None:
        validated_args, validated_kwargs = entry.validate_args(args, kwargs)
        return tuple(validated_args), dict(validated_kwargs)
    if fmt == PORTABLE_JSON or (fmt is None and default_format() == PORTABLE_JSON):
        return coerce_portable_args(entry, args, kwargs)
    return args, kwargs
