"""The class-level properties of ``DBOS``: ``DBOS.workflow_id``, ``DBOS.step_id``,
``DBOS.logger``, ``DBOS.sql_session``, ``DBOS.config`` ... They describe the calling workflow
(read from its context), or outside one the current process object."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import logs
from .config import ResolvedConfig
from .context import StartOptions, WorkflowContext, current_workflow, local_start_options, sql_session
from .current import current_process, not_launched

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["DBOSProperties", "classproperty"]

T = TypeVar("T")


class classproperty(Generic[T]):  # noqa: N801 - named like the builtin property it mirrors
    """A read-only property of a class (``DBOS.workflow_id``), listed by ``dir(DBOS)`` as DBOS's
    are: a descriptor on the class itself, not a property of a metaclass."""

    def __init__(self, fget: Callable[[Any], T]) -> None:
        self.fget = fget
        self.__doc__ = fget.__doc__

    def __get__(self, obj: object, owner: type | None = None) -> T:
        return self.fget(owner if owner is not None else type(obj))


class DBOSProperties:
    """Class-level properties: ``DBOS.workflow_id``, ``DBOS.step_id``, ``DBOS.logger`` ..."""

    @classproperty
    def workflow_id(cls) -> str | None:
        ctx = current_workflow()
        return ctx.workflow_id if ctx else None

    @classproperty
    def step_id(cls) -> int | None:
        ctx = current_workflow()
        return ctx.step_id if ctx else None

    @classproperty
    def logger(cls) -> Any:
        return logs.logger

    # Outside a workflow these read the innermost ``with`` block (DBOSContextSetAuth ...) and,
    # outside every block, fail as DBOS's do (there is no DBOS context to read).
    @classproperty
    def authenticated_user(cls) -> str | None:
        return _auth_context().authenticated_user

    @classproperty
    def authenticated_roles(cls) -> list[str] | None:
        return _auth_context().authenticated_roles

    @classproperty
    def assumed_role(cls) -> str | None:
        return _auth_context().assumed_role

    @classproperty
    def sql_session(cls) -> Session:
        """The SQLAlchemy ``Session`` of the running ``@DBOS.transaction``, inside the database
        transaction that commits with the transaction's checkpoint (``DBOS.sql_session.execute(
        sa.text("..."), {...})``); pgfleet commits it, so the body must not."""
        session = sql_session.get()
        if session is None:  # DBOS's assertions, word for word
            raise AssertionError("No DBOS context found" if current_workflow() is None else "db is only available within a transaction.")
        return session

    @classproperty
    def config(cls) -> ResolvedConfig:
        return _config("DBOS.config")

    @classproperty
    def executor_id(cls) -> str:
        return _config("DBOS.executor_id").executor_id


def _config(what: str) -> ResolvedConfig:
    """The configuration of the executor running the calling workflow, else of the current
    process (created by ``DBOS(config=...)``, launched or not)."""
    ctx = current_workflow()
    if ctx is not None:
        return ctx.executor.config
    process = current_process()
    if process is None:
        raise not_launched()
    return process.config


def _auth_context() -> WorkflowContext | StartOptions:
    """Where the caller's authentication lives: its workflow, else its innermost block."""
    ctx = current_workflow()
    if ctx is not None:
        return ctx
    options = local_start_options()
    if options is None:
        raise AssertionError("No DBOS context found")
    return options
