"""The spans of a workflow body's own operations, as DBOS opens them (compared with dbos 2.30
run on the same program): ``send``, ``send_bulk``, ``recv``, ``sleep``, ``set_event``,
``get_event``, ``write_stream`` and ``close_stream``, each a child of the workflow's span with
no operation type; none for the same calls from a step; the async forms alike."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from otel_spans import in_memory_spans
from runtime import DBOS, SetWorkflowID
from runtime.messages import SendMessage

OPERATIONS = ["close_stream", "get_event", "send", "send_bulk", "set_event", "sleep", "write_stream"]


@pytest.fixture
def spans(sys_url: str) -> Iterator[InMemorySpanExporter]:
    with in_memory_spans(sys_url, launch=False) as exporter:
        yield exporter


def children_of(exporter: InMemorySpanExporter, workflow_name: str) -> tuple[Any, list[Any]]:
    finished = exporter.get_finished_spans()
    (workflow,) = [s for s in finished if s.name == workflow_name]
    return workflow, sorted((s for s in finished if s.parent and s.parent.span_id == workflow.context.span_id), key=lambda s: s.name)


def test_each_operation_of_a_workflow_body_has_its_span(spans):
    @DBOS.workflow(name="receiver")
    def receiver() -> Any:
        return DBOS.recv("topic", timeout_seconds=10)

    @DBOS.workflow(name="body")
    def body(target: str) -> None:
        DBOS.sleep(0.01)
        DBOS.send(target, "hello", "topic")
        DBOS.send_bulk([SendMessage(target, "again", "other")])
        DBOS.set_event("k", "v")
        DBOS.get_event(target, "no-such-key", timeout_seconds=0.01)
        DBOS.write_stream("s", 1)
        DBOS.close_stream("s")

    DBOS.launch()
    with SetWorkflowID("receiver-1"):
        handle = DBOS.start_workflow(receiver)
    with SetWorkflowID("body-1"):
        body("receiver-1")
    assert handle.get_result() == "hello"
    workflow, operations = children_of(spans, "body")
    assert [s.name for s in operations] == OPERATIONS
    for span in operations:
        assert "operationType" not in span.attributes  # DBOS gives these none
        assert span.attributes["operationUUID"] == "body-1" and span.attributes["executorID"] == "traced-executor"
        assert span.attributes["applicationVersion"] == workflow.attributes["applicationVersion"]
        assert span.status.status_code is StatusCode.OK
    _, (recv,) = children_of(spans, "receiver")
    assert recv.name == "recv" and recv.attributes["operationUUID"] == "receiver-1"


def test_the_same_calls_from_a_step_open_no_span_of_their_own(spans):
    @DBOS.step(name="writes")
    def writes() -> None:
        DBOS.set_event("k", "v")
        DBOS.write_stream("s", 1)

    @DBOS.workflow(name="from_a_step")
    def from_a_step() -> None:
        writes()

    DBOS.launch()
    from_a_step()
    _, children = children_of(spans, "from_a_step")
    assert [s.name for s in children] == ["writes"]
    (step,) = children
    assert not [s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == step.context.span_id]


def test_the_async_forms_open_the_same_spans(spans):
    @DBOS.workflow(name="async_receiver")
    async def async_receiver() -> Any:
        return await DBOS.recv_async("topic", timeout_seconds=10)

    @DBOS.workflow(name="async_body")
    async def async_body(target: str) -> None:
        await DBOS.sleep_async(0.01)
        await DBOS.send_async(target, "hello", "topic")
        await DBOS.set_event_async("k", "v")
        await DBOS.get_event_async(target, "no-such-key", timeout_seconds=0.01)
        await DBOS.write_stream_async("s", 1)
        await DBOS.close_stream_async("s")

    async def run() -> Any:
        with SetWorkflowID("async-receiver-1"):
            handle = await DBOS.start_workflow_async(async_receiver)
        await async_body("async-receiver-1")
        return await handle.get_result()

    DBOS.launch()
    assert asyncio.run(run()) == "hello"
    _, operations = children_of(spans, "async_body")
    assert [s.name for s in operations] == [name for name in OPERATIONS if name != "send_bulk"]
    _, (recv,) = children_of(spans, "async_receiver")
    assert recv.name == "recv"
