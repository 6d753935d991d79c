"""Role-based security: ``@DBOS.required_roles``, ``@DBOS.default_required_roles`` and the
check every workflow, step and transaction call makes, as DBOS makes it.

A function's required roles are an attribute of the function (its own, else its class's
default); a call is allowed when the caller's authenticated roles (set by
``DBOSContextSetAuth`` or ``DBOS.set_authentication``, inherited by child workflows and
recorded in the workflow's row, so recovery and queue claimers check the same roles) hold one of
them, and the call runs with that role as its ``assumed_role``. A refused call raises
``DBOSNotAuthorizedError`` with DBOS's text: before anything is recorded when it is called
directly, as the workflow's recorded ERROR when it was started in the background or enqueued.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .context import current_workflow, local_start_options
from .errors import DBOSNotAuthorizedError
from .option_blocks import assume_role_for_next_starts

__all__ = ["required_roles", "mark_class_defaults", "assumed", "authorize", "requires_roles", "ROLES_ATTRIBUTE", "DEFAULT_ROLES_ATTRIBUTE"]

F = TypeVar("F", bound=Callable[..., Any])

# Attributes of a function (kept by functools.wraps, so every wrapper of it has them too).
ROLES_ATTRIBUTE = "__pgfleet_required_roles__"
DEFAULT_ROLES_ATTRIBUTE = "__pgfleet_default_required_roles__"
# The markers the workflow and step decorators leave on their wrappers (their registry entry).
_ENTRY_MARKERS = ("__pgfleet_workflow__", "__pgfleet_step__")


def _required(func: Callable[..., Any]) -> list[str] | None:
    """The roles a call of ``func`` needs: its own (even an empty list: none), else its class's."""
    own: list[str] | None = getattr(func, ROLES_ATTRIBUTE, None)
    if own is not None:
        return own
    default: list[str] | None = getattr(func, DEFAULT_ROLES_ATTRIBUTE, None)
    return default


def requires_roles(func: Callable[..., Any]) -> bool:
    """Whether a call of ``func`` has roles to check (most functions have none)."""
    return bool(_required(func))


def _caller_roles() -> list[str] | None:
    """The authenticated roles of the caller: its workflow's, else its ``with`` block's."""
    ctx = current_workflow()
    if ctx is not None:
        return ctx.authenticated_roles
    options = local_start_options()
    return options.authenticated_roles if options is not None else None


def authorize(func: Callable[..., Any], name: str) -> str | None:
    """The role a call of ``func`` (named ``name`` in errors) assumes, None when it needs none;
    raises ``DBOSNotAuthorizedError`` (DBOS's texts) when the caller holds none of its roles."""
    needed = _required(func)
    if not needed:
        return None
    held = _caller_roles()
    if held is None:
        raise DBOSNotAuthorizedError(
            f"Function {name} requires a role, but was called in a context without authentication information"
        )
    for role in needed:  # the first of the function's roles that the caller holds, as DBOS picks
        if role in held:
            return role
    raise DBOSNotAuthorizedError(f"Function {name} has required roles, but user is not authenticated for any of them")


@contextmanager
def assumed(func: Callable[..., Any], name: str) -> Iterator[None]:
    """Check a call of ``func`` and run it with the role it assumes: inside a workflow as the
    workflow's ``assumed_role`` (children started meanwhile record it), outside one for the
    workflows started in the block."""
    role = authorize(func, name)
    if role is None:
        yield
        return
    ctx = current_workflow()
    if ctx is None:
        with assume_role_for_next_starts(role):
            yield
        return
    prior, ctx.assumed_role = ctx.assumed_role, role
    try:
        yield
    finally:
        ctx.assumed_role = prior


def _name_of(func: Callable[..., Any]) -> str:
    for marker in _ENTRY_MARKERS:
        entry = getattr(func, marker, None)
        if entry is not None:
            return str(entry.name)
    return str(getattr(func, "__qualname__", func))


def required_roles(roles: list[str]) -> Callable[[F], F]:
    """``@DBOS.required_roles(roles)``, above or below ``@DBOS.workflow()``/``step()``/``transaction()``."""
    roles = list(roles)

    def decorator(func: F) -> F:
        setattr(func, ROLES_ATTRIBUTE, roles)
        for marker in _ENTRY_MARKERS:  # above the workflow decorator: its entry's function too,
            entry = getattr(func, marker, None)  # which executions check wherever they run
            if entry is not None:
                setattr(entry.func, ROLES_ATTRIBUTE, roles)
        name = _name_of(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with assumed(func, name):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # the (*args, **kwargs) wrapper stands for func's signature

    return decorator


def mark_class_defaults(klass: type, roles: list[str]) -> None:
    """Give the workflows, steps and transactions of ``klass`` its default required roles (a
    function's own ``required_roles`` still win)."""
    for attribute in vars(klass).values():
        func = attribute.__func__ if isinstance(attribute, (classmethod, staticmethod)) else attribute
        if not inspect.isfunction(func):  # methods only (not nested classes or plain values)
            continue
        targets = [func] + [getattr(func, m).func for m in _ENTRY_MARKERS if getattr(func, m, None) is not None]
        for target in targets:
            setattr(target, DEFAULT_ROLES_ATTRIBUTE, list(roles))
