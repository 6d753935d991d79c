"""OpenTelemetry spans for workflows, steps and transactions, as DBOS creates them.

As in DBOS, tracing is off unless the config says ``enable_otlp: True``, and OpenTelemetry is an
optional dependency (``pip install pgfleet[otel]``): pgfleet imports it only when tracing is on
(or ``PropagateOtelContext`` is used). A span is named after the function and carries DBOS's
attribute names (``operationUUID``, ``operationType``, ``executorID``, ``authenticatedUser`` ...);
it ends OK, or ERROR with the exception's text. ``DBOS.tracer`` is the :data:`dbos_tracer`
object; ``DBOS.span`` the active span.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .context import current_workflow, local_start_options
from .errors import DBOSConfigError

__all__ = ["DBOSTracer", "dbos_tracer", "traced", "tracing_enabled", "inject_trace_context"]


class DBOSTracer:
    """The tracer behind ``DBOS.tracer``: starts and ends DBOS's spans."""

    def __init__(self) -> None:
        self.provider: Any = None
        self.disable_otlp = True
        self.otlp_attributes: dict[str, str] = {}
        self.app_version: str | None = None
        self.executor_id: str | None = None

    def config(self, raw: dict[str, Any], executor_id: str | None, app_version: str | None) -> None:
        """Follow a DBOS config: on with ``enable_otlp`` (which needs opentelemetry-api)."""
        self.disable_otlp = not raw.get("enable_otlp")
        self.otlp_attributes = dict(raw.get("otlp_attributes") or {})
        self.executor_id, self.app_version = executor_id, app_version
        if not self.disable_otlp:
            try:
                import opentelemetry.trace  # noqa: F401 - only to fail here, with a clear message
            except ImportError:
                raise DBOSConfigError(
                    "enable_otlp needs OpenTelemetry: pip install 'pgfleet[otel]' (opentelemetry-api)"
                ) from None

    def set_provider(self, provider: Any) -> None:
        """Use this TracerProvider instead of OpenTelemetry's global one."""
        self.provider = provider

    def start_span(self, attributes: dict[str, Any], parent: Any = None, *, context: Any = None) -> Any:
        """A started span named ``attributes["name"]`` with the other attributes set, a child
        of ``parent`` (a span) or in ``context`` (an OpenTelemetry context), else of the active span."""
        from opentelemetry import trace

        tracer = self.provider.get_tracer("dbos-tracer") if self.provider is not None else trace.get_tracer("dbos-tracer")
        if parent is not None:
            context = trace.set_span_in_context(parent)
        span = tracer.start_span(name=attributes["name"], context=context)
        values = {**attributes, "applicationVersion": self.app_version, "executorID": self.executor_id}
        for key, value in values.items():
            if key != "name" and isinstance(value, (str, bool, int, float)):
                span.set_attribute(key, value)
        for key, value in self.otlp_attributes.items():
            span.set_attribute(key, value)
        return span

    def end_span(self, span: Any) -> None:
        span.end()

    def get_current_span(self) -> Any:
        """The active span (DBOS's or the application's), or None."""
        try:
            from opentelemetry import trace
        except ImportError:
            return None
        span = trace.get_current_span()
        return span if span.get_span_context().is_valid else None


dbos_tracer = DBOSTracer()


def tracing_enabled() -> bool:
    """Whether workflows and steps get spans (``enable_otlp`` in the config)."""
    return not dbos_tracer.disable_otlp


@contextmanager
def traced(
    name: str, operation_type: str, queue_name: str | None = None, extra: dict[str, Any] | None = None
) -> Iterator[None]:
    """Run the block in a span of the calling workflow's operation (a no-op with tracing off)."""
    if dbos_tracer.disable_otlp:
        yield
        return
    from opentelemetry.trace import Status, StatusCode, use_span

    ctx = current_workflow()
    attributes: dict[str, Any] = {"name": name, "operationType": operation_type, "queueName": queue_name, **(extra or {})}
    if ctx is not None:
        roles = ctx.authenticated_roles
        attributes.update(
            operationUUID=ctx.workflow_id, authenticatedUser=ctx.authenticated_user,
            authenticatedUserRoles=json.dumps(roles) if roles is not None else "",
            authenticatedUserAssumedRole=ctx.assumed_role,
        )
    span = dbos_tracer.start_span(attributes, context=_propagated_context() if operation_type == "workflow" else None)
    with use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        try:
            yield
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, description=str(exc)))
            raise
        else:
            span.set_status(Status(StatusCode.OK))
        finally:
            dbos_tracer.end_span(span)


def _propagated_context() -> Any:
    """The trace context a ``PropagateOtelContext`` block around this start carries, if any."""
    options = local_start_options()
    carrier = options.extra.get("otel_carrier") if options is not None else None
    if not carrier:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract(carrier)


def inject_trace_context(context: Any = None) -> dict[str, str] | None:
    """The W3C trace context (traceparent/tracestate) of ``context`` (default: the current
    one), or None when there is none or opentelemetry is not installed."""
    try:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return carrier or None
