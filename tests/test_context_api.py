"""The context family beyond what the differential programs compare: DBOS's OpenTelemetry spans
(DBOS does not install OpenTelemetry, so its programs cannot), PropagateOtelContext, the
FastAPI/Flask middleware that ``DBOS(fastapi=..., flask=...)`` installs (driven as plain
ASGI/WSGI apps), the Conductor refusal, ``run_dbos_database_migrations``, and role checks made
again where a queued workflow actually runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_spans import in_memory_spans
from runtime import (
    DBOS,
    DBOSContextSetAuth,
    DBOSDatabaseUnavailableError,
    DBOSException,
    DBOSNotAuthorizedError,
    PropagateOtelContext,
    Queue,
    SetWorkflowID,
    run_dbos_database_migrations,
)
from runtime.context import local_start_options
from runtime.web import DBOSASGIMiddleware, DBOSWSGIMiddleware


@pytest.fixture
def traced_dbos(sys_url: str) -> Iterator[InMemorySpanExporter]:
    """A launched DBOS with ``enable_otlp`` on, its spans kept in memory."""
    with in_memory_spans(sys_url, launch=True) as exporter:
        yield exporter


def test_workflows_and_steps_get_spans_with_dbos_attribute_names(traced_dbos):
    @DBOS.step(name="traced_step")
    def traced_step() -> Any:
        return DBOS.span.name  # the step's own span is the active one

    @DBOS.workflow(name="traced_workflow")
    def traced_workflow() -> Any:
        return [DBOS.span.name, traced_step()]

    with DBOSContextSetAuth("erin", ["reader"]), SetWorkflowID("traced-1"):
        assert traced_workflow() == ["traced_workflow", "traced_step"]
    spans = {span.name: span for span in traced_dbos.get_finished_spans()}
    workflow, step = spans["traced_workflow"], spans["traced_step"]
    assert step.parent is not None and step.parent.span_id == workflow.context.span_id
    assert workflow.attributes["operationType"] == "workflow" and step.attributes["operationType"] == "step"
    for span in (workflow, step):
        assert span.attributes["operationUUID"] == "traced-1"
        assert span.attributes["executorID"] == "traced-executor"
        assert span.attributes["authenticatedUser"] == "erin"
        assert span.attributes["authenticatedUserRoles"] == '["reader"]'
        assert span.status.is_ok


def test_a_failing_workflow_span_ends_in_error(traced_dbos):
    @DBOS.workflow(name="fails")
    def fails() -> None:
        raise ValueError("no good")

    with pytest.raises(ValueError):
        fails()
    (span,) = [s for s in traced_dbos.get_finished_spans() if s.name == "fails"]
    assert not span.status.is_ok and span.status.description == "no good"


def test_propagate_otel_context_puts_the_workflow_in_the_given_trace(traced_dbos):
    @DBOS.workflow(name="propagated")
    def propagated() -> None:
        pass

    tracer = TracerProvider().get_tracer("test")
    assert local_start_options() is None
    with tracer.start_as_current_span("caller") as caller:
        caller_context = otel_context.get_current()
    # Given explicitly (the caller's span is no longer the active one), as DBOS allows.
    with PropagateOtelContext(caller_context):
        carrier = local_start_options().extra["otel_carrier"]
        assert carrier["traceparent"].split("-")[1] == format(caller.get_span_context().trace_id, "032x")
        propagated()
    (span,) = [s for s in traced_dbos.get_finished_spans() if s.name == "propagated"]
    assert span.context.trace_id == caller.get_span_context().trace_id
    assert span.parent is not None and span.parent.span_id == caller.get_span_context().span_id
    with PropagateOtelContext():  # no current span: nothing to carry
        assert local_start_options().extra["otel_carrier"] is None


def test_conductor_is_refused_with_a_clear_error(sys_url):
    for given in ({"conductor_key": "key"}, {"conductor_url": "wss://example.invalid"}):
        with pytest.raises(DBOSException, match="does not connect to DBOS Conductor"):
            DBOS(config={"name": "no-conductor", "system_database_url": sys_url}, **given)


class _App:
    """A small FastAPI-shaped app: what DBOS(fastapi=app) calls on it, and a plain ASGI body
    that starts a workflow per HTTP request."""

    def __init__(self, workflow: Any) -> None:
        self.middleware: list[Any] = []
        self.handlers: dict[type, Any] = {}
        self.workflow = workflow

    def add_middleware(self, cls: Any) -> None:
        self.middleware.append(cls)

    def add_exception_handler(self, exc: type, handler: Any) -> None:
        self.handlers[exc] = handler

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": self.workflow().encode()})


def test_the_fastapi_middleware_launches_and_honours_the_idempotency_key(sys_url):
    DBOS.destroy(destroy_registry=True)

    @DBOS.workflow()
    def handler_workflow() -> str:
        return DBOS.workflow_id

    app = _App(handler_workflow)
    DBOS(config={"name": "web-app", "system_database_url": sys_url}, fastapi=app)
    assert app.middleware == [DBOSASGIMiddleware] and DBOSException in app.handlers
    asgi = DBOSASGIMiddleware(app)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def serve() -> None:
        launched: list[bool] = []

        async def note_launch(message: dict) -> None:
            if message["type"] == "lifespan.startup.complete":
                launched.append(DBOS._process().launched)

        await asgi({"type": "lifespan"}, None, note_launch)
        assert launched == [True]  # launched at startup; destroyed at shutdown
        DBOS(config={"name": "web-app", "system_database_url": sys_url}, fastapi=_App(handler_workflow))
        DBOS.launch()
        await asgi({"type": "http", "path": "/x", "method": "POST", "headers": [(b"dbos-idempotency-key", b"request-7")]}, None, send)

    try:
        asyncio.run(serve())
        assert sent[-1]["body"] == b"request-7"
    finally:
        DBOS.destroy(destroy_registry=True)


def test_the_flask_middleware_honours_the_idempotency_key(dbos):
    @DBOS.workflow()
    def flask_workflow() -> str:
        return DBOS.workflow_id

    class FlaskApp:
        def wsgi_app(self, environ: dict, start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [flask_workflow().encode()]

    app = FlaskApp()
    from runtime.web import install_web_middleware

    install_web_middleware(None, app)
    assert isinstance(app.wsgi_app, DBOSWSGIMiddleware)
    body = app.wsgi_app({"PATH_INFO": "/y", "REQUEST_METHOD": "GET", "HTTP_DBOS_IDEMPOTENCY_KEY": "flask-3"}, lambda *a: None)
    assert body == [b"flask-3"]


def test_run_dbos_database_migrations_creates_and_migrates(empty_db_url):
    run_dbos_database_migrations(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute("SELECT to_regclass('dbos.workflow_status'), to_regclass('dbos.pgfleet_executors')").fetchone() == (
            "dbos.workflow_status", "dbos.pgfleet_executors",
        )
    with pytest.raises(DBOSException, match="'dbos' schema"):
        run_dbos_database_migrations(empty_db_url, schema="other")
    with pytest.raises(DBOSException, match="application_role"):
        run_dbos_database_migrations(empty_db_url, application_role="app")
    with pytest.raises(DBOSDatabaseUnavailableError):
        run_dbos_database_migrations("postgresql://nobody@127.0.0.1:1/nothing")


def test_a_queued_workflow_is_checked_against_its_recorded_roles_where_it_runs(dbos, db):
    queue = Queue("roles-check-queue")

    @DBOS.workflow(name="needs_auditor")
    @DBOS.required_roles(["auditor"])
    def needs_auditor() -> str | None:
        return DBOS.assumed_role

    with DBOSContextSetAuth("frank", ["clerk"]), SetWorkflowID("roles-denied"):
        denied = queue.enqueue(needs_auditor)
    with DBOSContextSetAuth("gina", ["clerk", "auditor"]), SetWorkflowID("roles-allowed"):
        allowed = queue.enqueue(needs_auditor)
    assert allowed.get_result(timeout_seconds=30) == "auditor"
    with pytest.raises(DBOSNotAuthorizedError, match="needs_auditor has required roles"):
        denied.get_result(timeout_seconds=30)
    rows = db.execute(
        "SELECT workflow_uuid, status, authenticated_user, authenticated_roles, assumed_role FROM dbos.workflow_status"
        " WHERE name = 'needs_auditor' ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("roles-allowed", "SUCCESS", "gina", '["clerk", "auditor"]', None),
        ("roles-denied", "ERROR", "frank", '["clerk"]', None),
    ]
