"""DBOS's OpenTelemetry spans (config enable_otlp) for a small workflow: their names, parents,
DBOS attributes, statuses and retry events, the spans of a workflow body's own operations
(sleep, send, recv, events, streams; none from a step), and the trace context a PropagateOtelContext block
records in a queued workflow's row. Needs OpenTelemetry's SDK under both packages (DBOS's
"otel" extra): tests/test_differential.py skips it, saying so, when DBOS's Python lacks it.
pgfleet's own attributes (``pgfleet.*``) and the run-specific ones (executor, version) are left
out of what is compared."""

import psycopg
from dbos import DBOS, PropagateOtelContext, Queue, SetWorkflowID
from observe import app_database_url, attempt, database_url, report, see
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)  # both use the global provider unless told otherwise
queue = Queue("traced", polling_interval_sec=0.1)
RUN_SPECIFIC = {"executorID", "applicationVersion", "applicationID"}
tries = []


@DBOS.step(retries_allowed=True, max_attempts=3, interval_seconds=0.01)
def flaky():
    tries.append(1)
    if len(tries) % 2 == 1:
        raise ConnectionError("first try fails")
    return "charged"


@DBOS.step()
def pack(order):
    return f"packed {order}"


@DBOS.transaction()
def note(order):
    return order


@DBOS.workflow()
def order_flow(order):
    return [flaky(), pack(order), note(order)]


@DBOS.workflow()
def refused():
    raise ValueError("out of stock")


@DBOS.step()
def from_a_step():
    DBOS.set_event("in-step", 1)  # no span of its own, in either package
    DBOS.write_stream("log", "step")


@DBOS.workflow()
def operations():
    """A workflow body's own operations: each gets a span of its own (sync, one after another)."""
    DBOS.sleep(0.01)
    DBOS.send(DBOS.workflow_id, "ping", "topic")
    got = DBOS.recv("topic", timeout_seconds=5)
    DBOS.set_event("k", got)
    value = DBOS.get_event(DBOS.workflow_id, "k", timeout_seconds=1)
    from_a_step()
    DBOS.write_stream("log", value)
    DBOS.close_stream("log")
    return value


def spans():
    """Every finished span but the program's own, in start order, as both packages make them."""
    finished = sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)
    names = {s.context.span_id: s.name for s in finished}
    return [
        {
            "name": s.name,
            "parent": names.get(s.parent.span_id, "(outside)") if s.parent else None,
            "status": s.status.status_code.name,
            "description": s.status.description,
            "events": [[e.name, dict(e.attributes)] for e in s.events],
            "attributes": {k: v for k, v in s.attributes.items() if k not in RUN_SPECIFIC and not k.startswith("pgfleet.")},
        }
        for s in finished
        if s.name != "enqueuer"
    ]


if __name__ == "__main__":
    DBOS(config={"name": "diff-tracing", "system_database_url": database_url(), "application_database_url": app_database_url(),
                 "enable_otlp": True})
    DBOS.launch()
    with SetWorkflowID("traced-1"):
        see("direct", order_flow("o-1"))
    with SetWorkflowID("refused-1"):
        attempt("refused", refused)
    with SetWorkflowID("operations-1"):
        see("operations", operations())
    tracer = provider.get_tracer("program")
    with tracer.start_as_current_span("enqueuer") as enqueuer, PropagateOtelContext(), SetWorkflowID("queued-1"):
        handle = queue.enqueue(order_flow, "o-2")
    see("queued", handle.get_result())
    with psycopg.connect(database_url()) as conn:
        (attributes,) = conn.execute("SELECT attributes FROM dbos.workflow_status WHERE workflow_uuid = 'queued-1'").fetchone()
    carrier = attributes["dbos.otelContext"]
    see("carrier keys", sorted(carrier))
    see("carrier names the enqueuer's span", carrier["traceparent"].split("-")[2] == format(enqueuer.get_span_context().span_id, "016x"))
    queued = [s for s in exporter.get_finished_spans() if s.attributes.get("operationUUID") == "queued-1" and s.name == "order_flow"]
    see("the queued workflow's parent is the enqueuer", [s.parent.span_id == enqueuer.get_span_context().span_id for s in queued])
    see("spans", spans())
    DBOS.destroy()
    report()
