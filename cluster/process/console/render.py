"""Rendering the console's pages: the Jinja2 environment (autoescape on: every value a workflow
recorded is shown as text, a ``<script>`` input included), the security headers of every page,
times, and stored values decoded as ``pgfleet workflow get`` decodes them."""

from __future__ import annotations

import datetime
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from runtime.serialization import deserialize, deserialize_args, deserialize_exception

__all__ = ["page", "error_page", "ms_time", "dt_time", "decoded", "decoded_input", "decoded_error", "HIDDEN"]

TEMPLATES = Path(__file__).parent / "templates"
HIDDEN = "(hidden: the console runs with --hide-values)"

# No script runs on these pages (the fleet page refreshes with <meta http-equiv="refresh">),
# so the policy allows none: even a value that escaped escaping could not execute.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser posts the console's own forms
    # with "Origin: null", which the cross-site check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def ms_time(ms: Any) -> str:
    """Epoch milliseconds as UTC text ("-" for none)."""
    if ms is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(int(ms) / 1000, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def dt_time(value: Any) -> str:
    """A timestamp as UTC text ("-" for none)."""
    if not isinstance(value, datetime.datetime):
        return "-" if value is None else str(value)
    stamp = value.astimezone(datetime.timezone.utc) if value.tzinfo is not None else value
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + "Z"


def seconds(value: Any) -> str:
    """A duration in seconds as short text."""
    if value is None:
        return "-"
    value = float(value)
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f}min"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template, whatever its name: values are always text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # q: a value as one URL component (path segment or query value): '/', '&', '?' all quoted.
    env.filters.update(ms_time=ms_time, dt_time=dt_time, seconds=seconds, q=lambda v: urllib.parse.quote(str(v), safe=""))
    return env


_ENV = _environment()


def page(template: str, context: Mapping[str, Any], status_code: int = 200) -> HTMLResponse:
    """A rendered template as a response with the console's security headers."""
    html = _ENV.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


def error_page(message: str, status_code: int, *, login: bool = False, next_url: str = "/") -> HTMLResponse:
    """A refusal or an error, said in one sentence (``data-test="error"``)."""
    return page("error.html", {"message": message, "login": login, "next_url": next_url, "nav": not login}, status_code)


def _attempt(fn: Callable[[], Any], raw: str) -> tuple[str, bool]:
    """``repr`` of ``fn()``'s value, or the stored text when this process cannot decode it."""
    try:
        return fn(), True
    except Exception:
        return raw, False


def decoded(raw: str | None, fmt: str | None, *, hide: bool) -> str | None:
    """A stored value as text (``repr`` of the decoded value; the stored text when it cannot be decoded)."""
    if raw is None:
        return None
    if hide:
        return HIDDEN
    text, _ = _attempt(lambda: repr(deserialize(raw, fmt)), raw)
    return str(text)


def decoded_input(raw: str | None, fmt: str | None, *, hide: bool) -> str | None:
    """A workflow's stored arguments as a call's argument list (``1, 'a', key=2``)."""
    if raw is None:
        return None
    if hide:
        return HIDDEN

    def call() -> str:
        args, kwargs = deserialize_args(raw, fmt)
        return ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]) or "(no arguments)"

    text, _ = _attempt(call, raw)
    return str(text)


def decoded_error(raw: str | None, fmt: str | None, *, hide: bool) -> str | None:
    """A stored exception as ``Type: message``."""
    if raw is None:
        return None
    if hide:
        return HIDDEN

    def describe() -> str:
        exc = deserialize_exception(raw, fmt)
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    text, _ = _attempt(describe, raw)
    return str(text)
