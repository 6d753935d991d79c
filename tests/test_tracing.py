"""OpenTelemetry tracing (the ``pgfleet[otel]`` extra, config ``enable_otlp``), as DBOS traces.

In this process spans are read from the SDK's in-memory exporter; a worker process's arrive at
an OTLP/HTTP collector the test runs (the worker's ``otlp_traces_endpoints``), so the trace
context of a queued workflow is shown to travel in the database, from the enqueuing process's
span to the worker's workflow span. Off by default: without ``enable_otlp`` nothing is traced
and opentelemetry is not even imported.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry import context as otel_context
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from conftest import REPO_ROOT, run_app, wait_until
from otel_spans import in_memory_spans
from otlp_receiver import OtlpReceiver
from runtime import DBOS, DBOSClient, PropagateOtelContext, Queue, SetWorkflowAttributes, SetWorkflowID

# A tracer of the test's own, standing for the application's request handler.
caller_tracer = TracerProvider().get_tracer("test-caller")


@pytest.fixture
def traced(sys_url: str) -> Iterator[InMemorySpanExporter]:
    """A DBOS with ``enable_otlp`` on (launched by each test, serving its queues), its spans kept in memory."""
    with in_memory_spans(sys_url, launch=False) as exporter:
        yield exporter


def spans_named(exporter: InMemorySpanExporter, name: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def owner_epoch(db: psycopg.Connection, workflow_id: str) -> int:
    return db.execute("SELECT owner_epoch FROM dbos.workflow_status WHERE workflow_uuid = %s", (workflow_id,)).fetchone()[0]


def test_each_workflow_and_step_has_a_span_with_its_place_in_the_fleet(traced, db):
    @DBOS.step(name="reserve")
    def reserve() -> int:
        return 1

    @DBOS.transaction(name="record")
    def record() -> int:
        return 2

    @DBOS.workflow(name="place")
    def place() -> int:
        return reserve() + record()

    DBOS.launch()
    with SetWorkflowID("place-1"):
        assert place() == 3
    (workflow,) = spans_named(traced, "place")
    (step,) = spans_named(traced, "reserve")
    (transaction,) = spans_named(traced, "record")
    epoch = owner_epoch(db, "place-1")
    for span, kind in ((workflow, "workflow"), (step, "step"), (transaction, "transaction")):
        assert span.attributes["operationType"] == kind
        assert span.attributes["operationUUID"] == "place-1"
        assert span.attributes["executorID"] == "traced-executor"
        assert span.attributes["pgfleet.ownerEpoch"] == epoch
        assert span.status.status_code is StatusCode.OK
    assert step.parent.span_id == workflow.context.span_id and transaction.parent.span_id == workflow.context.span_id
    assert (step.attributes["pgfleet.stepID"], transaction.attributes["pgfleet.stepID"]) == (1, 2)
    assert step.attributes["pgfleet.attempt"] == 1


def test_a_retried_steps_attempts_show_on_its_span(traced):
    tries: list[int] = []

    @DBOS.step(name="flaky", retries_allowed=True, max_attempts=3, interval_seconds=0.001)
    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError(f"try {len(tries)} failed")
        return "ok"

    @DBOS.workflow(name="uses_flaky")
    def uses_flaky() -> str:
        return flaky()

    DBOS.launch()
    assert uses_flaky() == "ok"
    (span,) = spans_named(traced, "flaky")
    assert span.attributes["pgfleet.attempt"] == 3
    # DBOS's events, one per attempt that is retried, counted from 0.
    assert [e.name for e in span.events] == ["Step attempt 0 failed", "Step attempt 1 failed"]
    assert span.events[0].attributes["error"] == "try 1 failed"
    assert span.events[1].attributes["retryIntervalSeconds"] == 0.001
    assert span.status.status_code is StatusCode.OK


def test_async_workflows_and_steps_get_the_same_spans(traced):
    tries: list[int] = []

    @DBOS.step(name="async_flaky", retries_allowed=True, max_attempts=2, interval_seconds=0.001)
    async def async_flaky() -> int:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("first try failed")
        return 7

    @DBOS.workflow(name="async_flow")
    async def async_flow() -> int:
        return await async_flaky()

    DBOS.launch()
    with caller_tracer.start_as_current_span("request") as request:
        assert asyncio.run(async_flow()) == 7
    (workflow,), (step,) = spans_named(traced, "async_flow"), spans_named(traced, "async_flaky")
    assert workflow.parent.span_id == request.get_span_context().span_id
    assert step.parent.span_id == workflow.context.span_id
    assert (step.attributes["pgfleet.stepID"], step.attributes["pgfleet.attempt"]) == (1, 2)
    assert [e.name for e in step.events] == ["Step attempt 0 failed"]


def test_an_error_marks_the_step_and_the_workflow_span(traced):
    @DBOS.step(name="refuse")
    def refuse() -> None:
        raise ValueError("out of stock")

    @DBOS.workflow(name="refused")
    def refused() -> None:
        refuse()

    DBOS.launch()
    with pytest.raises(ValueError, match="out of stock"):
        refused()
    for name in ("refuse", "refused"):
        (span,) = spans_named(traced, name)
        assert span.status.status_code is StatusCode.ERROR and span.status.description == "out of stock"


def test_a_background_start_is_a_child_of_its_callers_span(traced):
    @DBOS.workflow(name="in_background")
    def in_background() -> str:
        return "done"

    DBOS.launch()
    with caller_tracer.start_as_current_span("request") as request:
        handle = DBOS.start_workflow(in_background)
    assert handle.get_result() == "done"
    (span,) = spans_named(traced, "in_background")
    assert span.context.trace_id == request.get_span_context().trace_id
    assert span.parent.span_id == request.get_span_context().span_id


def test_a_queued_workflow_run_here_reads_its_trace_context_from_its_row(traced, db):
    queue = Queue("traced-local", polling_interval_sec=0.05)

    @DBOS.workflow(name="queued_here")
    def queued_here() -> str:
        return "ran"

    DBOS.launch()
    with caller_tracer.start_as_current_span("enqueuer") as enqueuer, PropagateOtelContext():
        handle = queue.enqueue(queued_here)
    # A bad carrier (attributes are anyone's to write) starts a new trace, and fails nothing.
    with SetWorkflowAttributes({"dbos.otelContext": {"traceparent": 5}}), SetWorkflowID("bad-carrier"):
        bad = queue.enqueue(queued_here)
    assert handle.get_result() == "ran" and bad.get_result() == "ran"
    (attributes,) = db.execute("SELECT attributes FROM dbos.workflow_status WHERE workflow_uuid = %s", (handle.workflow_id,)).fetchone()
    assert attributes["dbos.otelContext"]["traceparent"].split("-")[2] == format(enqueuer.get_span_context().span_id, "016x")
    spans = {s.attributes["operationUUID"]: s for s in spans_named(traced, "queued_here")}
    assert spans[handle.workflow_id].parent.span_id == enqueuer.get_span_context().span_id
    assert spans[handle.workflow_id].attributes["queueName"] == "traced-local"
    assert spans["bad-carrier"].parent is None


def test_the_carrier_is_not_inherited_by_the_children_of_a_propagated_workflow(traced, db):
    @DBOS.workflow(name="kid")
    def kid() -> None:
        pass

    @DBOS.workflow(name="parent")
    def parent() -> None:
        DBOS.start_workflow(kid).get_result()

    DBOS.launch()
    with caller_tracer.start_as_current_span("request") as request:
        given = otel_context.get_current()
    with PropagateOtelContext(given), SetWorkflowID("parent-1"):
        parent()
    (parent_span,), (kid_span,) = spans_named(traced, "parent"), spans_named(traced, "kid")
    assert parent_span.parent.span_id == request.get_span_context().span_id
    assert kid_span.parent.span_id == parent_span.context.span_id
    (kid_attributes,) = db.execute("SELECT attributes FROM dbos.workflow_status WHERE parent_workflow_id = 'parent-1'").fetchone()
    assert kid_attributes is None


def test_a_recovered_workflow_is_still_a_child_of_the_span_that_started_it(traced, sys_url):
    waits = {"sleep": True}

    @DBOS.workflow(name="outlived")
    def outlived() -> str:
        if waits["sleep"]:
            DBOS.sleep(3600)  # stopped by the destroy below: left PENDING, recovered at relaunch
        return "recovered"

    DBOS.launch()
    with caller_tracer.start_as_current_span("request") as request, PropagateOtelContext(), SetWorkflowID("outlived-1"):
        DBOS.start_workflow(outlived)
    wait_until(lambda: DBOS.get_workflow_status("outlived-1") is not None, "the workflow to start")
    DBOS.destroy()
    waits["sleep"] = False
    DBOS(config={"name": "traced", "system_database_url": sys_url, "executor_id": "traced-executor", "enable_otlp": True})
    DBOS.launch()  # recovers this executor's PENDING workflow, in a process that knows no span
    assert DBOS.retrieve_workflow("outlived-1").get_result() == "recovered"
    finished = [s for s in spans_named(traced, "outlived") if s.status.status_code is StatusCode.OK]
    assert len(finished) == 1 and finished[0].parent.span_id == request.get_span_context().span_id


def test_semconv_attribute_names_as_dbos_names_them_and_bad_tracing_settings_are_refused(sys_url):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "semconv", "system_database_url": sys_url, "executor_id": "semconv-executor",
                 "enable_otlp": True, "otel_attribute_format": "semconv"})
    DBOS.tracer.set_provider(provider)
    try:
        @DBOS.workflow(name="named")
        def named() -> None:
            pass

        DBOS.launch()
        named()
        (span,) = spans_named(exporter, "named")
        assert span.attributes["dbos.operation.type"] == "workflow"
        assert span.attributes["dbos.executor.id"] == "semconv-executor"
        assert "pgfleet.owner.epoch" in span.attributes and "operationUUID" not in span.attributes
    finally:
        DBOS.destroy(destroy_registry=True)
        DBOS.tracer.set_provider(None)
        DBOS.tracer.disable_otlp = True
        DBOS.tracer.otel_attribute_format = "legacy"
    bad_configs = {
        "otel_attribute_format must be 'legacy' or 'semconv'": {"otel_attribute_format": "otel"},
        "otlp_traces_endpoints must be a list of URLs, got str": {"otlp_traces_endpoints": "http://127.0.0.1:4318"},
        "otlp_traces_endpoints: 'collector:4318' is not an http": {"otlp_traces_endpoints": ["collector:4318"]},
    }
    for message, bad in bad_configs.items():
        with pytest.raises(Exception, match=message):
            DBOS(config={"name": "bad", "system_database_url": sys_url, "enable_otlp": True, **bad})
        DBOS.destroy(destroy_registry=True)
    DBOS.tracer.disable_otlp = True


def test_off_by_default_and_opentelemetry_is_not_imported(sys_url):
    program = textwrap.dedent(f"""
        import sys
        from runtime import DBOS, DBOSClient, Queue
        DBOS(config={{"name": "untraced", "system_database_url": {sys_url!r}}})
        queue = Queue("untraced-q", polling_interval_sec=0.05)

        @DBOS.step()
        def step() -> int:
            return 1

        @DBOS.workflow()
        def flow() -> int:
            return step() + 1

        DBOS.launch()
        assert flow() == 2 and queue.enqueue(flow).get_result() == 2 and DBOS.start_workflow(flow).get_result() == 2
        DBOSClient(system_database_url={sys_url!r}).enqueue({{"workflow_name": flow.__qualname__, "queue_name": "untraced-q"}})
        DBOS.destroy()
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        assert not loaded, loaded
        print("untraced")
    """)
    done = subprocess.run([sys.executable, "-c", program], env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "untraced", done.stderr


# -- across processes: the worker's spans arrive at an OTLP collector run by the test -----------


@dataclass
class CollectedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    status_code: int  # OTLP's: 1 OK, 2 ERROR
    events: list[str] = field(default_factory=list)


class Collector:
    """An OTLP/HTTP trace collector (``POST /v1/traces``, protobuf) keeping what it receives."""

    def __init__(self) -> None:
        self.spans: list[CollectedSpan] = []
        self.lock = threading.Lock()
        self.receiver = OtlpReceiver("/v1/traces", ExportTraceServiceRequest, ExportTraceServiceResponse, self.receive)
        self.url = self.receiver.url

    def receive(self, request: ExportTraceServiceRequest) -> None:
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}
                    with self.lock:
                        self.spans.append(CollectedSpan(
                            span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(),
                            attributes, span.status.code, [e.name for e in span.events],
                        ))

    def of(self, workflow_id: str) -> dict[str, CollectedSpan]:
        with self.lock:
            return {s.name: s for s in self.spans if s.attributes.get("operationUUID") == workflow_id}

    def close(self) -> None:
        self.receiver.close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    try:
        yield running
    finally:
        running.close()


def test_a_queued_workflows_span_in_another_process_is_a_child_of_the_enqueuers(sys_url, db, tmp_path: Path, collector):
    ready = tmp_path / "ready"
    # Batches leave the worker every 50 ms instead of every 5 s.
    worker = run_app("traced_worker.py", sys_url, "traced-worker-1", str(ready), collector.url, env={"OTEL_BSP_SCHEDULE_DELAY": "50"})
    client = DBOSClient(system_database_url=sys_url)
    try:
        wait_until(lambda: ready.exists() or worker.poll() is not None, "the traced worker to launch")
        assert worker.poll() is None, worker.communicate()
        # This process serves no queue and traces nothing itself: its spans are the caller's.
        DBOS.destroy(destroy_registry=True)
        DBOS(config={"name": "traced-enqueuer", "system_database_url": sys_url, "queues": [],
                     "application_version": "tracing-tests", "log_level": "WARNING"})

        @DBOS.workflow(name="traced_order")
        def traced_order(order: str) -> list[str]:
            raise AssertionError("the enqueuing process must never run queued work")

        DBOS.launch()
        with caller_tracer.start_as_current_span("checkout") as checkout, PropagateOtelContext():
            by_queue = Queue("traced").enqueue(traced_order, "o-1")
        with caller_tracer.start_as_current_span("api-call") as api_call:
            by_client = client.enqueue(
                {"workflow_name": "traced_order", "queue_name": "traced", "app_version": "tracing-tests",
                 "otel_context": otel_context.get_current()}, "o-2")
        with caller_tracer.start_as_current_span("by-name") as by_name_call:
            by_name = DBOS.enqueue_workflow_with_options(
                {"workflow_name": "traced_order", "queue_name": "traced", "app_version": "tracing-tests",
                 "otel_context": otel_context.get_current()}, "o-3")
        for handle, order in ((by_queue, "o-1"), (by_client, "o-2"), (by_name, "o-3")):
            assert handle.get_result() == [f"charged {order}", f"packed {order}"]
        for handle, caller in ((by_queue, checkout), (by_client, api_call), (by_name, by_name_call)):
            spans = wait_until(lambda h=handle: (found := collector.of(h.workflow_id)).keys() >= {"traced_order", "charge", "pack"} and found,
                               f"the worker's spans of {handle.workflow_id}")
            workflow, charge, pack = spans["traced_order"], spans["charge"], spans["pack"]
            assert workflow.trace_id == format(caller.get_span_context().trace_id, "032x")
            assert workflow.parent_span_id == format(caller.get_span_context().span_id, "016x")
            assert charge.parent_span_id == workflow.span_id and pack.parent_span_id == workflow.span_id
            assert workflow.attributes["executorID"] == "traced-worker-1" and workflow.attributes["queueName"] == "traced"
            assert workflow.attributes["pgfleet.ownerEpoch"] == owner_epoch(db, handle.workflow_id)
            assert (charge.attributes["pgfleet.stepID"], pack.attributes["pgfleet.stepID"]) == (1, 2)
            assert charge.attributes["pgfleet.attempt"] == 2 and charge.events == ["Step attempt 0 failed"]
            assert workflow.status_code == 1 and charge.status_code == 1
    finally:
        DBOS.destroy(destroy_registry=True)
        client.destroy()
        if worker.poll() is None:
            worker.terminate()
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
