"""Sending the ``dbos`` and ``pgfleet`` loggers' records to ``otlp_logs_endpoints`` (OTLP over
HTTP), as DBOS sends its ``dbos`` logger's.

What DBOS does, learned by running dbos 2.30 against a collector (``tests/test_otlp_logs.py``
checks pgfleet against the same facts): with ``enable_otlp`` on and logs endpoints given, it
makes a ``LoggerProvider`` for the app (``service.name`` is the config's ``name``) unless the
application set one, gives every endpoint a batching exporter, and hangs OpenTelemetry's
``LoggingHandler`` on the ``dbos`` logger. Each record's body is the formatted message; its
attributes are ``applicationID`` (``DBOS__APPID``, else empty), ``applicationVersion``,
``executorID``, ``operationUUID`` inside a workflow, and ``otlp_attributes``. With
``enable_otlp`` and no endpoints, it still sends to a ``LoggerProvider`` the application set.

pgfleet does the same for ``DBOS.logger`` (the ``dbos`` logger) and also for its own
``pgfleet.*`` loggers: what the cluster did (takeovers, leader terms, workflows stopped by
their fence) belongs beside the application's logs. Their records are structlog events: the
body is the event's text alone ("in workflow arg", not ``event='in workflow arg' ...``), and
the event's fields become attributes (``step_id``, a takeover's ``term``), from ``record.pgfleet_event``
(:func:`sysdb.logs.render`; ``workflow_id`` and ``executor_id`` under DBOS's names). Unlike
DBOS, ``DBOS.destroy()`` takes the handler off again.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import warnings
from typing import Any

from sysdb.logs import FIELDS_ATTRIBUTE

from .context import current_workflow
from .errors import DBOSConfigError

__all__ = ["configure", "detach"]

# The loggers whose records are sent: DBOS.logger's, and pgfleet's own (pgfleet.<part>).
LOGGERS = ("dbos", "pgfleet")
# Event fields that are not attributes: the body, and what the record says anyway.
_NOT_ATTRIBUTES = frozenset({"event", "level", "positional_args"})
# Event fields that DBOS sends under its own names.
_DBOS_NAMES = {"workflow_id": "operationUUID", "executor_id": "executorID"}

_lock = threading.Lock()
_exporting: set[str] = set()  # endpoints given a processor in this process (a relaunch adds none)
_handler: OtlpLogHandler | None = None


class OtlpLogHandler(logging.Handler):
    """OpenTelemetry's ``LoggingHandler``, given each record with DBOS's attributes and, for a
    structlog event, its text as the body and its fields as attributes."""

    def __init__(self, otel_handler: logging.Handler, attributes: dict[str, Any]) -> None:
        super().__init__()
        self._otel = otel_handler
        self._attributes = attributes

    def emit(self, record: logging.LogRecord) -> None:
        # Never raises into the code that logged (a heartbeat, a claim): logging's handleError.
        try:
            self._otel.emit(self._with_attributes(record))
        except Exception:  # noqa: BLE001 - reported by logging.Handler.handleError
            self.handleError(record)

    def _with_attributes(self, record: logging.LogRecord) -> logging.LogRecord:
        out = copy.copy(record)  # the other handlers keep the record as it was
        values = out.__dict__
        fields = values.pop(FIELDS_ATTRIBUTE, None)
        values.update(self._attributes)
        if isinstance(fields, dict):
            out.msg, out.args = str(fields.get("event", out.msg)), None
            for key, value in fields.items():
                if not isinstance(key, str) or key in _NOT_ATTRIBUTES or value is None:
                    continue
                name = _DBOS_NAMES.get(key, key)
                if name in _DBOS_NAMES.values() or name not in values:  # a record's own or the user's stay
                    values[name] = value
        ctx = current_workflow()
        if ctx is not None:
            values["operationUUID"] = ctx.workflow_id
        return out

    def flush(self) -> None:
        self._otel.flush()


def _logger_provider(endpoints: list[str], service_name: str) -> Any:
    """The process's LoggerProvider (made for the app if it set none and ``endpoints`` are
    given), with a batching exporter to each endpoint; None if there is nothing to send to."""
    try:
        from opentelemetry._logs import get_logger_provider, set_logger_provider
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    except ImportError:
        if endpoints:
            raise DBOSConfigError(
                "otlp_logs_endpoints needs OpenTelemetry's SDK and OTLP exporter: pip install 'pgfleet[otel]'"
            ) from None
        return None
    provider = get_logger_provider()
    if endpoints and not isinstance(provider, LoggerProvider):
        provider = LoggerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        set_logger_provider(provider)
    if not isinstance(provider, LoggerProvider):
        return None  # no endpoints, and the application set no provider of its own
    for endpoint in endpoints:
        if endpoint not in _exporting:
            provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint), export_timeout_millis=5000))
            _exporting.add(endpoint)
    return provider


def configure(raw: dict[str, Any], executor_id: str | None, app_version: str | None) -> None:
    """Follow a DBOS config (``raw``, already validated, its endpoints by
    :func:`runtime.otlp.check_endpoints`): with ``enable_otlp``, send the
    ``dbos`` and ``pgfleet`` loggers' records to its logs endpoints (or to the application's
    LoggerProvider); without, send none."""
    global _handler
    detach()
    if not raw.get("enable_otlp"):
        return
    with _lock:
        provider = _logger_provider(raw.get("otlp_logs_endpoints") or [], str(raw.get("name") or "pgfleet"))
        if provider is None:
            return
        from opentelemetry.sdk._logs import LoggingHandler

        with warnings.catch_warnings():
            # The SDK 1.45 deprecates its handler for opentelemetry-instrumentation-logging's,
            # a package more; DBOS 2.30 uses the SDK's too.
            warnings.simplefilter("ignore", DeprecationWarning)
            otel_handler = LoggingHandler(logger_provider=provider)
        attributes = {"applicationID": os.environ.get("DBOS__APPID", ""), "applicationVersion": app_version or "",
                      "executorID": executor_id or "", **dict(raw.get("otlp_attributes") or {})}
        _handler = OtlpLogHandler(otel_handler, attributes)
        for name in LOGGERS:
            logging.getLogger(name).addHandler(_handler)


def detach() -> None:
    """Stop sending log records (``DBOS.destroy()``, or a new config)."""
    global _handler
    with _lock:
        if _handler is not None:
            for name in LOGGERS:
                logging.getLogger(name).removeHandler(_handler)
            _handler = None
