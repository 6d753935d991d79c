"""The console's Starlette application: its routes (the URL contract of issue #13), the token
check in front of every one of them, and ``/login``."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from sysdb import SystemDatabase

from .actions import action_form, action_post
from .fleet_views import fleet_page, queues_api, queues_page
from .render import SECURITY_HEADERS, error_page, page
from .security import COOKIE_NAME, session_value, token_matches
from .state import Console, console_of
from .workflow_views import workflow_detail, workflow_list

__all__ = ["create_app", "LOOPBACK_HOSTS"]

# The Host headers of a console served on a loopback address.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

Handler = Callable[[Request], Response]


def _guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` behind the token check, run in Starlette's thread pool (its reads block)."""

    async def endpoint(request: Request) -> Response:
        refusal = _refuse(request)
        if refusal is not None:
            return refusal
        return await run_in_threadpool(handler, request)

    return endpoint


def _refuse(request: Request) -> Response | None:
    """The refusal of a request without the token (None: it may go on)."""
    console = console_of(request)
    if console.access(request).allowed:
        return None
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": "this console needs its token (Authorization: Bearer <token>)"}, status_code=401,
                            headers={**SECURITY_HEADERS, "WWW-Authenticate": "Bearer"})
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return error_page("this console needs its token: sign in with it", 401, login=True, next_url=next_url)


def _cross_site(request: Request) -> bool:
    """Whether a POST comes from a page of another site (a forged form: on a console without a
    token, any web page the operator opens could otherwise post to 127.0.0.1). Browsers say so
    in Sec-Fetch-Site; one that does not is judged by its Origin (a script-less client, like
    curl, sends neither and is let through: it is not a browser being tricked)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urllib.parse.urlsplit(origin).netloc != request.headers.get("host", "")


async def _guarded_post(request: Request) -> Response:
    refusal = _refuse(request)
    if refusal is not None:
        return refusal
    if _cross_site(request):
        return error_page("refused: this action was posted from another site's page", 403)
    return await action_post(request)


def _safe_next(text: str | None) -> str:
    """Where to go after signing in: a path of this console only (never another site)."""
    if not text or not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


async def login(request: Request) -> Response:
    """GET/POST /login: given the right ``token`` (form field or query parameter), set the
    HttpOnly session cookie and go on; else show the form (with the refusal when one was given)."""
    console = console_of(request)
    if request.method == "POST":
        form = urllib.parse.parse_qs((await request.body()).decode("utf-8", "replace"))
        given, next_url = form.get("token", [""])[-1], form.get("next", ["/"])[-1]
    else:
        given, next_url = request.query_params.get("token", ""), request.query_params.get("next", "/")
    next_url = _safe_next(next_url)
    if console.token is None:
        return RedirectResponse(next_url, status_code=303, headers=SECURITY_HEADERS)
    if not given:
        return page("login.html", console.context(message=None, next_url=next_url), 200)
    if not token_matches(console.token, given.strip()):
        return page("login.html", console.context(message="wrong token", next_url=next_url), 401)
    response = RedirectResponse(next_url, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE_NAME, session_value(console.token), httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


def create_app(db: SystemDatabase, *, read_only: bool = False, token: str | None = None, hide_values: bool = False,
               refresh_sec: int = 5, allowed_hosts: Sequence[str] | None = None) -> Starlette:
    """The console on an open system database: ``read_only`` refuses every action (403),
    ``token`` (None: none) is required by every page and API, ``hide_values`` shows no input,
    output, error, event, stream or message value; ``allowed_hosts`` (None: any) are the Host
    headers it answers (:data:`LOOPBACK_HOSTS` for a console without a token, so a DNS-rebinding
    page cannot reach it). The caller owns ``db`` (opens and closes it)."""
    routes = [
        Route("/", _guarded(fleet_page)),
        Route("/queues", _guarded(queues_page)),
        Route("/api/queues", _guarded(queues_api)),
        Route("/workflows", _guarded(workflow_list)),
        Route("/login", login, methods=["GET", "POST"]),
        # An action before the page: the id may hold "/" (``:path``), the action names the tail.
        Route("/workflows/{workflow_id:path}/{action:str}", _guarded(action_form), methods=["GET"]),
        Route("/workflows/{workflow_id:path}/{action:str}", _guarded_post, methods=["POST"]),
        Route("/workflows/{workflow_id:path}", _guarded(workflow_detail)),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))] if allowed_hosts is not None else []
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = Console(db=db, read_only=read_only, token=token, hide_values=hide_values, refresh_sec=refresh_sec)
    return app
