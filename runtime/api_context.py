"""``DBOS``'s class methods for roles, authentication, instances, alerts and tracing:
``required_roles``, ``default_required_roles``, ``set_authentication``, ``register_instance``,
``alert_handler``, ``span`` and ``tracer`` (a mixin of :class:`runtime.dbos.DBOS`)."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import decorators, logs
from . import roles as role_checks
from .context import current_workflow, local_start_options
from .current import current_process
from .dbos_properties import classproperty
from .errors import DBOSException
from .registry import registry
from .tracing import DBOSTracer, dbos_tracer

if TYPE_CHECKING:
    from .process import DBOSProcess

__all__ = ["ContextAPI", "NO_CONTEXT"]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
AlertHandler = Callable[[str, str, dict[str, str]], None]

# DBOS's words (an AssertionError) for reading or writing the DBOS context where there is none:
# outside a workflow and outside every ``with`` block (DBOSContextEnsure, DBOSContextSetAuth ...).
NO_CONTEXT = "No DBOS context found"

# The alert handler of each process object (DBOS keeps one per DBOS instance).
_alert_handlers: weakref.WeakKeyDictionary[DBOSProcess, AlertHandler] = weakref.WeakKeyDictionary()


class ContextAPI:
    """Roles, authentication, configured instances, alerts and tracing."""

    @classmethod
    def required_roles(cls, roles: list[str]) -> Callable[[F], F]:
        """Decorate a workflow, step or transaction (above or below its DBOS decorator) with the
        roles it needs: a call from a context that holds none of them raises
        ``DBOSNotAuthorizedError``; an allowed call runs with the first role it holds as its
        ``assumed_role``."""
        return role_checks.required_roles(roles)

    @classmethod
    def default_required_roles(cls, roles: list[str]) -> Callable[[type[T]], type[T]]:
        """Decorate a class (registering it as ``@DBOS.dbos_class()`` does) with the roles its
        workflows, steps and transactions need unless they say otherwise with
        ``required_roles``."""

        def decorator(klass: type[T]) -> type[T]:
            decorators.dbos_class(registry, None)(klass)
            role_checks.mark_class_defaults(klass, roles)
            return klass

        return decorator

    @classmethod
    def set_authentication(cls, authenticated_user: str | None, authenticated_roles: list[str] | None) -> None:
        """Set the authenticated user and roles of the current context: the running workflow
        (its children inherit them), else the innermost ``with`` block (``DBOSContextEnsure``
        makes one); AssertionError, as in DBOS, where there is neither."""
        ctx = current_workflow()
        if ctx is not None:
            ctx.authenticated_user, ctx.authenticated_roles = authenticated_user, authenticated_roles
            return
        options = local_start_options()
        if options is None:
            raise AssertionError(NO_CONTEXT)
        options.authenticated_user, options.authenticated_roles = authenticated_user, authenticated_roles

    @classmethod
    def register_instance(cls, inst: object) -> None:
        """Register a configured instance under its class and ``config_name`` (so recovery
        finds it); ``DBOSConfiguredInstance`` does it in its constructor."""
        config_name: str | None = getattr(inst, "config_name")  # noqa: B009 - any object with one, as in DBOS
        class_name = type(inst).__qualname__
        process = current_process()
        if process is not None and process.launched:
            logs.logger.warning(
                f"Configured instance {config_name} of class {class_name} was registered after DBOS was launched. "
                "This may cause errors during workflow recovery. All configured instances should be instantiated "
                "before DBOS is launched."
            )
        registry.add_instance(class_name, config_name or "", inst)

    @classmethod
    def alert_handler(cls, func: AlertHandler) -> AlertHandler:
        """Register the one function that receives alerts ``(name, message, metadata)``. In DBOS
        alerts come from Conductor, which pgfleet does not connect to: the handler is kept
        but never called (see the README's differences)."""
        process = current_process()
        if process is None:
            raise DBOSException("No DBOS was created yet")
        if process.launched:
            raise DBOSException("alert_handler must be defined before DBOS is launched")
        if process in _alert_handlers:
            raise DBOSException("An alert_handler is already defined. You can only declare one alert_handler.")
        _alert_handlers[process] = func
        return func

    @classproperty
    def span(cls) -> Any:
        """The active OpenTelemetry span (DBOS's span of the running workflow or step), or None."""
        if current_workflow() is None and local_start_options() is None:
            raise AssertionError(NO_CONTEXT)
        return dbos_tracer.get_current_span()

    @classproperty
    def tracer(cls) -> DBOSTracer:
        """The DBOS OpenTelemetry tracer."""
        return dbos_tracer
