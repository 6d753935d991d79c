"""What ``DBOS(fastapi=app)`` and ``DBOS(flask=app)`` install, as DBOS does, and the refusal of
``conductor_url``/``conductor_key``.

FastAPI: the app's lifespan launches DBOS at startup and destroys it at shutdown; a
``DBOSException`` becomes a JSON response (``message``, ``dbos_error_code``, ``dbos_error``)
with the error's HTTP status (500 by default); every HTTP request runs in a span of its own
(tracing on) and, given a ``dbos-idempotency-key`` header, as ``SetWorkflowID(key)``, so the
first workflow the handler starts gets that id. Flask: the same per-request behaviour around
``app.wsgi_app``. Neither framework is a dependency: the middleware is plain ASGI/WSGI, and the
one framework class it needs (the JSON response) is imported from the app's own installation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from sysdb.logs import get_logger

from .context import _OptionsBlock
from .current import current_process
from .errors import DBOSException
from .option_blocks import SetWorkflowID
from .tracing import traced

_log = get_logger("pgfleet.runtime")

__all__ = ["install_web_middleware", "refuse_conductor", "IDEMPOTENCY_HEADER", "REQUEST_ID_HEADER"]

IDEMPOTENCY_HEADER = "dbos-idempotency-key"
REQUEST_ID_HEADER = "x-request-id"


def refuse_conductor(conductor_url: str | None, conductor_key: str | None) -> None:
    """pgfleet replaces DBOS Conductor (its cluster is in the system database): connecting to
    one is refused rather than silently ignored, so nobody believes they are managed by it."""
    if conductor_url is not None or conductor_key is not None:
        raise DBOSException(
            "pgfleet does not connect to DBOS Conductor (conductor_url/conductor_key): its executors "
            "coordinate through the system database; use `pgfleet status` and the DBOS.* admin API instead"
        )


def warn_admin_server(run_admin_server: Any) -> None:
    """DBOS's admin HTTP server (``run_admin_server``, deprecated in DBOS 2.x and off by default)
    is not part of pgfleet; asked for it, say so once at startup instead of silently serving no
    port (a health probe on it would only fail later, and less clearly)."""
    if run_admin_server:
        _log.warning(
            "run_admin_server: pgfleet runs no DBOS admin server (deprecated in DBOS); for health and "
            "workflow management use `pgfleet status`, `pgfleet console`, the supervisor's metrics_port "
            "and the DBOS.* admin API"
        )


def install_web_middleware(fastapi: Any, flask: Any) -> None:
    """Install DBOS's middleware on the given FastAPI and/or Flask app."""
    if fastapi is not None:
        fastapi.add_middleware(DBOSASGIMiddleware)
        fastapi.add_exception_handler(DBOSException, _dbos_error_response)
    if flask is not None:
        flask.wsgi_app = DBOSWSGIMiddleware(flask.wsgi_app)


@contextmanager
def request_context(path: str, method: str, url: str, client_ip: str | None, headers: dict[str, str]) -> Iterator[None]:
    """One HTTP request: its span (tracing on) and the workflow id its idempotency key gives."""
    attributes = {
        "requestID": headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4()),
        "requestIP": client_ip, "requestURL": url, "requestMethod": method,
    }
    with ExitStack() as stack:
        stack.enter_context(traced(path, "handler", extra=attributes))
        # A block even without a key: the handler runs in a DBOS context, as in DBOS.
        key = headers.get(IDEMPOTENCY_HEADER)
        stack.enter_context(SetWorkflowID(key) if key else _OptionsBlock())
        yield


class DBOSASGIMiddleware:
    """DBOS's FastAPI middleware as plain ASGI: lifespan launch/destroy and request context."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        path = scope.get("path", "")
        url = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}{path}"
        with request_context(path, scope.get("method", ""), url, client[0] if client else None, headers):
            await self.app(scope, receive, send)


def _lifespan_send(send: Callable[..., Any]) -> Callable[..., Any]:
    async def wrapped(message: dict[str, Any]) -> None:
        from .dbos import DBOS  # the facade: this module is imported by it

        if message["type"] == "lifespan.startup.complete":
            process = current_process()
            if process is None or not process.launched:  # the app may have launched it already
                DBOS.launch()
        elif message["type"] == "lifespan.shutdown.complete":
            DBOS.destroy()
        await send(message)

    return wrapped


async def _dbos_error_response(request: Any, exc: Exception) -> Any:
    from starlette.responses import JSONResponse  # type: ignore[import-not-found,unused-ignore]  # FastAPI's dependency

    status = getattr(exc, "status_code", None) or 500
    return JSONResponse(
        status_code=status,
        content={
            "message": str(getattr(exc, "message", exc)),
            "dbos_error_code": str(getattr(exc, "dbos_error_code", None)),
            "dbos_error": type(exc).__name__,
        },
    )


class DBOSWSGIMiddleware:
    """DBOS's Flask middleware: each request in a DBOS context with its idempotency key."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        path = environ.get("PATH_INFO", "")
        url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}{path}"
        with request_context(path, environ.get("REQUEST_METHOD", ""), url, environ.get("REMOTE_ADDR"), headers):
            return self.app(environ, start_response)
