"""``otlp_logs_endpoints``: DBOS.logger's records, and pgfleet's own, sent over OTLP/HTTP to a
collector as DBOS sends its ``dbos`` logger's (runtime/otlp_logs.py). The collector here is a
real HTTP server decoding OTLP's protobuf; the facts compared with are dbos 2.30's, learned by
running the same program against it: body the formatted message, scope the logger's name,
``applicationVersion``, ``executorID``, ``operationUUID`` inside a workflow, the user's
``otlp_attributes``, ``service.name`` the app's name, and the caller's file and line."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk._logs")
from opentelemetry._logs import get_logger_provider  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from conftest import wait_until  # noqa: E402
from otlp_receiver import OtlpReceiver  # noqa: E402
from runtime import DBOS, DBOSConfigError, SetWorkflowID  # noqa: E402


def _plain(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value"))


class LogCollector:
    """An OTLP/HTTP logs collector (``POST /v1/logs``) keeping each record as a dict."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.receiver = OtlpReceiver("/v1/logs", ExportLogsServiceRequest, ExportLogsServiceResponse, self.receive)
        self.url = self.receiver.url

    def receive(self, request: ExportLogsServiceRequest) -> None:
        for resource_logs in request.resource_logs:
            resource = {kv.key: _plain(kv.value) for kv in resource_logs.resource.attributes}
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    with self.lock:
                        self.records.append({
                            "scope": scope_logs.scope.name, "severity": record.severity_text, "body": _plain(record.body),
                            "attributes": {kv.key: _plain(kv.value) for kv in record.attributes}, "resource": resource,
                        })

    def with_body(self, body: str) -> list[dict[str, Any]]:
        get_logger_provider().force_flush()  # type: ignore[attr-defined]
        with self.lock:
            return [r for r in self.records if r["body"] == body]


@pytest.fixture(scope="module")
def collector() -> Iterator[LogCollector]:
    # One for the module: each endpoint stays on the process's LoggerProvider for good (as in
    # DBOS), so a collector per test would leave the next tests' records retried against a
    # closed port. At the end the provider is shut down (flushed first): later tests that turn
    # enable_otlp on would otherwise send their records to this closed collector.
    running = LogCollector()
    yield running
    get_logger_provider().shutdown()  # type: ignore[attr-defined]
    running.receiver.close()


def test_dbos_logger_and_pgfleet_records_reach_the_collector_as_dbos_sends_them(sys_url, collector):
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "logs-app", "system_database_url": sys_url, "executor_id": "logs-executor",
                 "application_version": "v9", "enable_otlp": True, "otlp_logs_endpoints": [collector.url],
                 "otlp_attributes": {"team": "payments"}})
    try:
        @DBOS.step()
        def charge() -> None:
            DBOS.logger.info("charging")

        @DBOS.workflow()
        def checkout() -> None:
            DBOS.logger.warning("checkout of %d items", 3)
            charge()

        DBOS.launch()
        with SetWorkflowID("logs-wf-1"):
            checkout()
        [warning] = wait_until(lambda: collector.with_body("checkout of 3 items"), "the workflow's record")
        [info] = wait_until(lambda: collector.with_body("charging"), "the step's record")
    finally:
        DBOS.destroy(destroy_registry=True)

    assert warning["scope"] == "dbos" and warning["severity"] == "WARN"
    assert warning["resource"]["service.name"] == "logs-app"
    attributes = warning["attributes"]
    assert {k: attributes[k] for k in ("applicationID", "applicationVersion", "executorID", "operationUUID", "team")} == {
        "applicationID": "", "applicationVersion": "v9", "executorID": "logs-executor", "operationUUID": "logs-wf-1",
        "team": "payments",
    }
    assert attributes["code.file.path"] == __file__ and attributes["code.function.name"] == "checkout"
    assert "workflow_id" not in attributes  # sent as operationUUID only
    assert info["attributes"]["operationUUID"] == "logs-wf-1" and info["attributes"]["step_id"] == 1
    # pgfleet's own records go along, each event's fields as attributes.
    elected = wait_until(lambda: collector.with_body("elected leader"), "pgfleet's record of the leader's term")[0]
    assert elected["scope"] == "pgfleet.cluster" and elected["attributes"]["term"] >= 1
    assert elected["attributes"]["executorID"] == "logs-executor"


def test_after_destroy_nothing_more_is_sent(sys_url, collector):
    DBOS.destroy(destroy_registry=True)
    DBOS(config={"name": "logs-app", "system_database_url": sys_url, "enable_otlp": True, "otlp_logs_endpoints": [collector.url]})
    DBOS.logger.info("while configured")
    DBOS.destroy(destroy_registry=True)
    DBOS.logger.info("after destroy")
    wait_until(lambda: collector.with_body("while configured"), "the record sent while configured")
    assert collector.with_body("after destroy") == []


@pytest.mark.parametrize("endpoints, error", [
    ("http://collector:4318/v1/logs", "otlp_logs_endpoints must be a list of URLs, got str"),
    (["collector:4318"], "otlp_logs_endpoints: 'collector:4318' is not an http\\(s\\) URL"),
])
def test_bad_logs_endpoints_are_refused_before_anything_changes(sys_url, endpoints, error):
    DBOS.destroy(destroy_registry=True)
    with pytest.raises(DBOSConfigError, match=error):
        DBOS(config={"name": "logs-app", "system_database_url": sys_url, "enable_otlp": True, "otlp_logs_endpoints": endpoints})


def test_a_failing_export_never_raises_into_the_code_that_logged(capsys):
    """A heartbeat or a claim that logs must not fail because the exporter did: logging's
    handleError reports it on stderr instead."""
    import logging

    from runtime.otlp_logs import OtlpLogHandler
    from sysdb.logs import get_logger

    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("the exporter broke")

    handler = OtlpLogHandler(Broken(), {"executorID": "x"})
    logging.getLogger("pgfleet.otlp-test").addHandler(handler)
    try:
        get_logger("pgfleet.otlp-test").warning("the heartbeat goes on", term=3)
    finally:
        logging.getLogger("pgfleet.otlp-test").removeHandler(handler)
    assert "RuntimeError: the exporter broke" in capsys.readouterr().err
