"""Sending DBOS's spans to ``otlp_traces_endpoints`` (OTLP over HTTP), as DBOS sets it up.

Imported only when tracing is on and endpoints are configured (it needs the ``pgfleet[otel]``
extra's exporter). As in DBOS: if the application set no TracerProvider of its own, one is made
for the app (``service.name`` is the config's ``name``) and made global; every endpoint gets a
batching exporter on the provider in use, so an application's own provider exports there too.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import DBOSConfigError

__all__ = ["export_to", "check_endpoints"]

# Endpoints given a processor already in this process: a second DBOS(config) (tests, a
# relaunch) must not export every span twice.
_exporting: set[str] = set()
_lock = threading.Lock()


def check_endpoints(key: str, endpoints: Any) -> list[str]:
    """The endpoints of config key ``key`` (``otlp_traces_endpoints``, ``otlp_logs_endpoints``):
    a list of http(s) URLs, or nothing; else a clear error naming the key."""
    if endpoints is None:
        return []
    if not isinstance(endpoints, list):
        raise DBOSConfigError(f"{key} must be a list of URLs, got {type(endpoints).__name__}")
    for endpoint in endpoints:
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise DBOSConfigError(f"{key}: {endpoint!r} is not an http(s) URL")
    return endpoints


def export_to(endpoints: list[str], service_name: str) -> None:
    """Export every span of the process's tracer provider to each of ``endpoints``."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise DBOSConfigError(
            "otlp_traces_endpoints needs OpenTelemetry's SDK and OTLP exporter: pip install 'pgfleet[otel]'"
        ) from None
    check_endpoints("otlp_traces_endpoints", endpoints)
    with _lock:
        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
            trace.set_tracer_provider(provider)
        if not hasattr(provider, "add_span_processor"):
            raise DBOSConfigError(f"otlp_traces_endpoints: the global tracer provider ({type(provider).__name__}) takes no exporter")
        for endpoint in endpoints:
            if endpoint not in _exporting:
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
                _exporting.add(endpoint)
