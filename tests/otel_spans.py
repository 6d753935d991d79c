"""A DBOS with ``enable_otlp`` on whose spans are kept in memory, for the tests that read spans
(``test_tracing.py``, ``test_context_api.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from runtime import DBOS


@contextmanager
def in_memory_spans(sys_url: str, *, launch: bool) -> Iterator[InMemorySpanExporter]:
    """A DBOS on ``sys_url`` (executor ``traced-executor``) exporting to memory, launched if
    ``launch``; destroyed, and tracing off again, on exit."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "traced", "system_database_url": sys_url, "executor_id": "traced-executor", "enable_otlp": True})
    DBOS.tracer.set_provider(provider)
    try:
        if launch:
            DBOS.launch()
        yield exporter
    finally:
        DBOS.destroy(destroy_registry=True)
        DBOS.tracer.set_provider(None)
        DBOS.tracer.disable_otlp = True
