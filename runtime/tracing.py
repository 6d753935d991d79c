"""OpenTelemetry spans for workflows, steps and transactions, and for a workflow body's own
operations (``send``, ``recv``, ``sleep``, events, streams: :func:`operation_span`), as DBOS
creates them.

As in DBOS, tracing is off unless the config says ``enable_otlp: True``, and OpenTelemetry is an
optional dependency (``pip install 'pgfleet[otel]'``): pgfleet imports it only when tracing is
on (or ``PropagateOtelContext`` / an ``otel_context`` enqueue option is used). A span is named
after the function and carries DBOS's attribute names (``operationUUID``, ``operationType``,
``executorID``, ``queueName``, ``authenticatedUser`` ...; DBOS's ``dbos.*`` names with
``otel_attribute_format: "semconv"``); it ends OK, or ERROR with the exception's text. A retried
step's failed attempts are span events named as DBOS names them (``Step attempt N failed``).
pgfleet adds what its cluster knows: the owner epoch of the execution (``pgfleet.ownerEpoch``),
a step's position (``pgfleet.stepID``) and attempt (``pgfleet.attempt``).

The trace context travels as in DBOS: the W3C carrier of a ``PropagateOtelContext`` block (or of
an ``otel_context`` enqueue option) is recorded in the workflow's row, in its attributes under
``dbos.otelContext``, so the workflow's span is a child of the enqueuer's wherever and whenever
it runs (another process, after a takeover, on recovery). A workflow started here without one
is a child of the span active where it was started (a background start too).
"""

from __future__ import annotations

import contextvars
import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

from .context import current_workflow
from .errors import DBOSConfigError, DBOSException

if TYPE_CHECKING:
    from .context import StartOptions, WorkflowContext

__all__ = [
    "DBOSTracer", "dbos_tracer", "traced", "tracing_enabled", "inject_trace_context", "extract_trace_context",
    "OTEL_CARRIER_ATTRIBUTE", "FROM_ROW", "carrier_for_start", "attributes_with_carrier", "start_parent",
    "note_step_position", "note_attempt", "note_failed_attempt", "option_carrier",
]

# Where DBOS keeps a workflow's trace carrier: a key of its attributes (workflow_status.attributes).
OTEL_CARRIER_ATTRIBUTE = "dbos.otelContext"
# WorkflowContext.trace_parent of an execution that began from a row (claimed, taken over,
# recovered): its carrier, if any, is read from the row when its span starts.
FROM_ROW = "pgfleet:trace-parent-from-row"
# The keys of StartOptions.extra a PropagateOtelContext block sets: its carrier, and the
# workflow (or None) that entered the block: as in DBOS the carrier is not inherited by the
# children of a workflow started in the block.
CARRIER_KEY, CARRIER_OWNER_KEY = "otel_carrier", "otel_carrier_owner"

# DBOS's legacy attribute names -> its semconv ones (dbos/_tracer.py), and pgfleet's own.
_SEMCONV = {
    "operationUUID": "dbos.operation.workflow_id", "operationType": "dbos.operation.type",
    "applicationID": "dbos.application.id", "applicationVersion": "dbos.application.version",
    "executorID": "dbos.executor.id", "queueName": "dbos.queue.name", "authenticatedUser": "dbos.user.name",
    "authenticatedUserRoles": "dbos.user.roles", "authenticatedUserAssumedRole": "dbos.user.assumed_role",
    "requestID": "dbos.request.id", "requestIP": "dbos.request.ip", "requestURL": "dbos.request.url",
    "requestMethod": "dbos.request.method", "responseCode": "dbos.response.status_code",
    "pgfleet.ownerEpoch": "pgfleet.owner.epoch", "pgfleet.stepID": "pgfleet.step.id", "pgfleet.attempt": "pgfleet.step.attempt",
}
# The span of the step or transaction now opening in this thread or task: its position and
# attempts are set on it as the executor learns them.
_step_span: contextvars.ContextVar[Any] = contextvars.ContextVar("pgfleet_step_span", default=None)


class DBOSTracer:
    """The tracer behind ``DBOS.tracer``: starts and ends DBOS's spans."""

    def __init__(self) -> None:
        self.provider: Any = None
        self.app_id = os.environ.get("DBOS__APPID")  # as DBOS reads it
        self.disable_otlp = True
        self.otlp_attributes: dict[str, str] = {}
        self.otel_attribute_format = "legacy"
        self.app_version: str | None = None
        self.executor_id: str | None = None

    def config(self, raw: dict[str, Any], executor_id: str | None, app_version: str | None) -> None:
        """Follow a DBOS config: on with ``enable_otlp`` (which needs opentelemetry); spans go
        to ``otlp_traces_endpoints`` as DBOS sends them (see :func:`runtime.otlp.export_to`).
        Bad settings are refused before anything changes."""
        enabled = bool(raw.get("enable_otlp"))
        attribute_format = raw.get("otel_attribute_format") or "legacy"
        if attribute_format not in ("legacy", "semconv"):
            raise DBOSConfigError(f"otel_attribute_format must be 'legacy' or 'semconv', got {attribute_format!r}")
        endpoints = raw.get("otlp_traces_endpoints")
        if endpoints is not None and not isinstance(endpoints, list):
            raise DBOSConfigError(f"otlp_traces_endpoints must be a list of URLs, got {type(endpoints).__name__}")
        if enabled:
            try:
                import opentelemetry.trace  # noqa: F401 - only to fail here, with a clear message
            except ImportError:
                raise DBOSConfigError("enable_otlp needs OpenTelemetry: pip install 'pgfleet[otel]'") from None
            if endpoints:
                from .otlp import export_to

                export_to(endpoints, str(raw.get("name") or "pgfleet"))
        self.disable_otlp = not enabled
        self.otlp_attributes = dict(raw.get("otlp_attributes") or {})
        self.otel_attribute_format = attribute_format
        self.executor_id, self.app_version = executor_id, app_version

    def set_provider(self, provider: Any) -> None:
        """Use this TracerProvider instead of OpenTelemetry's global one."""
        self.provider = provider

    def attribute_name(self, key: str) -> str:
        """The name ``key`` (a legacy DBOS name) has on a span, per ``otel_attribute_format``."""
        return _SEMCONV.get(key, key) if self.otel_attribute_format == "semconv" else key

    def start_span(self, attributes: dict[str, Any], parent: Any = None, *, context: Any = None) -> Any:
        """A started span named ``attributes["name"]`` with the other attributes set, a child
        of ``parent`` (a span) or in ``context`` (an OpenTelemetry context), else of the active span."""
        from opentelemetry import trace

        tracer = self.provider.get_tracer("dbos-tracer") if self.provider is not None else trace.get_tracer("dbos-tracer")
        if parent is not None:
            context = trace.set_span_in_context(parent)
        span = tracer.start_span(name=attributes["name"], context=context)
        values = {"applicationID": self.app_id, "applicationVersion": self.app_version, "executorID": self.executor_id, **attributes}
        for key, value in values.items():
            if key != "name" and value is not None and isinstance(value, (str, bool, int, float)):
                span.set_attribute(self.attribute_name(key), value)
        for key, value in self.otlp_attributes.items():
            span.set_attribute(key, value)  # the user's own names, verbatim (as DBOS)
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
    name: str, operation_type: str | None, queue_name: str | None = None, extra: dict[str, Any] | None = None
) -> Iterator[None]:
    """Run the block in a span of the calling workflow's operation (a no-op with tracing off);
    ``operation_type`` None gives a span without one (DBOS's for ``send``, ``sleep`` ...)."""
    if dbos_tracer.disable_otlp:
        yield
        return
    from opentelemetry.trace import Status, StatusCode, use_span

    ctx = current_workflow()
    span = dbos_tracer.start_span(
        _attributes(ctx, name, operation_type, queue_name, extra),
        context=_workflow_parent(ctx) if operation_type == "workflow" else None,
    )
    step = _step_span.set(span if operation_type in ("step", "transaction") else None)
    with use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        try:
            yield
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, description=str(exc)))
            raise
        else:
            span.set_status(Status(StatusCode.OK))
        finally:
            _step_span.reset(step)
            dbos_tracer.end_span(span)


def operation_span(name: str) -> AbstractContextManager[None]:
    """The span DBOS opens around one operation of a workflow body -- ``send``, ``send_bulk``,
    ``recv``, ``sleep`` (its recording, not the wait), ``set_event``, ``get_event``,
    ``write_stream``, ``close_stream`` -- named ``name``, with no operation type, a child of the
    workflow's span; replays get one too. From a step, a transaction or plain code, none (as in
    DBOS); with tracing off, nothing at all."""
    if dbos_tracer.disable_otlp:
        return nullcontext()
    ctx = current_workflow()
    if ctx is None or ctx.in_step or ctx.in_transaction:
        return nullcontext()
    return traced(name, None)


def _attributes(
    ctx: WorkflowContext | None, name: str, operation_type: str | None, queue_name: str | None, extra: dict[str, Any] | None
) -> dict[str, Any]:
    attributes: dict[str, Any] = {"name": name, "operationType": operation_type, "queueName": queue_name, **(extra or {})}
    if ctx is not None:
        roles = ctx.authenticated_roles
        attributes.update({
            "operationUUID": ctx.workflow_id, "authenticatedUser": ctx.authenticated_user,
            "authenticatedUserRoles": json.dumps(roles) if roles is not None else "",
            "authenticatedUserAssumedRole": ctx.assumed_role,
            # The executor running it (several may share one interpreter), its code version (as
            # DBOS's spans: the one computed at launch), and the execution's fencing epoch.
            "executorID": ctx.executor_id, "applicationVersion": ctx.executor.application_version,
            "pgfleet.ownerEpoch": ctx.owner_epoch,
        })
    return attributes


def _workflow_parent(ctx: WorkflowContext | None) -> Any:
    """The OpenTelemetry context a workflow's span starts in (None: the active one)."""
    parent = ctx.trace_parent if ctx is not None else None
    if parent is None:
        return None
    if parent == FROM_ROW:
        assert ctx is not None
        try:
            parent = ctx.executor.db.workflows.trace_carrier(ctx.workflow_id)
        except Exception as exc:  # a trace is never worth failing the workflow for
            ctx.executor.log.warning("could not read the workflow's trace context; its span starts a trace", error=str(exc))
            return None
    from opentelemetry.context import Context

    if isinstance(parent, Context):  # captured at a start here (a Context is a dict too)
        return parent
    return extract_trace_context(parent) if isinstance(parent, dict) else None


def start_parent(attributes: dict[str, Any] | None) -> Any:
    """What a workflow started here has for ``WorkflowContext.trace_parent``: the carrier its
    row records (``attributes``), else the context active now, so that a background start is
    a child of its caller's span. None with tracing off (nothing imported)."""
    if dbos_tracer.disable_otlp:
        return None
    carrier = carrier_from_attributes(attributes)
    if carrier is not None:
        return carrier
    from opentelemetry import context as otel_context

    return otel_context.get_current()


def carrier_for_start(options: StartOptions, parent: WorkflowContext | None) -> dict[str, str] | None:
    """The carrier of the ``PropagateOtelContext`` block this start's own caller entered (the
    parent workflow, or none), or None."""
    carrier = options.extra.get(CARRIER_KEY)
    if not carrier:
        return None
    caller = parent.workflow_id if parent is not None else None
    return carrier if options.extra.get(CARRIER_OWNER_KEY) == caller else None


def attributes_with_carrier(attributes: dict[str, Any] | None, carrier: dict[str, str] | None) -> dict[str, Any] | None:
    """``attributes`` with ``carrier`` under ``dbos.otelContext`` (as DBOS records it)."""
    if not carrier:
        return attributes
    return {**(attributes or {}), OTEL_CARRIER_ATTRIBUTE: carrier}


def carrier_from_attributes(attributes: Any) -> dict[str, Any] | None:
    """The carrier in a workflow's attributes (any shape tolerated: they are the user's too)."""
    carrier = attributes.get(OTEL_CARRIER_ATTRIBUTE) if isinstance(attributes, dict) else None
    return carrier if isinstance(carrier, dict) else None


def inject_trace_context(context: Any = None) -> dict[str, str] | None:
    """The W3C trace context (traceparent/tracestate, not baggage: it is recorded in the row)
    of ``context`` (default: the current one), or None when there is none or opentelemetry is
    not installed."""
    try:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=context)
    return carrier or None


def option_carrier(otel_context: Any) -> dict[str, str] | None:
    """The carrier of an ``otel_context`` enqueue option (None when it holds no valid span)."""
    if otel_context is None:
        return None
    try:
        from opentelemetry.context import Context
    except ImportError:
        raise DBOSException("EnqueueOptions['otel_context'] needs OpenTelemetry: pip install 'pgfleet[otel]'") from None
    if not isinstance(otel_context, Context):
        raise DBOSException(
            f"EnqueueOptions['otel_context'] must be an OpenTelemetry Context "
            f"(opentelemetry.context.get_current()), got {type(otel_context).__name__}"
        )
    return inject_trace_context(otel_context)


def extract_trace_context(carrier: dict[str, Any]) -> Any:
    """The OpenTelemetry context of a recorded carrier, or None when it holds no valid span
    context. Never raises: a bad carrier (attributes are writable by anyone) must not stop a
    workflow."""
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    try:
        extracted = TraceContextTextMapPropagator().extract(carrier)
    except Exception:  # non-string values make the propagator raise
        return None
    return extracted if get_current_span(extracted).get_span_context().is_valid else None


def note_step_position(function_id: int) -> None:
    """The step (or transaction) whose span is opening took position ``function_id``."""
    span = _step_span.get()
    if span is not None:
        span.set_attribute(dbos_tracer.attribute_name("pgfleet.stepID"), function_id)


def note_attempt(attempt: int) -> None:
    """Attempt ``attempt`` (from 1) of the running step's body is starting."""
    span = _step_span.get()
    if span is not None:
        span.set_attribute(dbos_tracer.attribute_name("pgfleet.attempt"), attempt)


def note_failed_attempt(attempt: int, error: BaseException | None, interval_seconds: float) -> None:
    """Attempt ``attempt`` (from 0, as DBOS counts) failed and is retried: DBOS's span event."""
    span = _step_span.get()
    if span is not None:
        span.add_event(f"Step attempt {attempt} failed", {"error": str(error), "retryIntervalSeconds": interval_seconds})
