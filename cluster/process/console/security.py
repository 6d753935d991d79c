"""Who may use the console: the token (from a file or the environment, never a flag), the
refusal to bind a non-loopback address without one, and the check every request passes.

A request carries the token as ``Authorization: Bearer <token>`` or as the HttpOnly cookie that
``/login`` sets. The cookie holds an HMAC of the token, not the token itself, so a leaked cookie
jar does not leak the token. Comparisons are constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request

__all__ = ["ConsoleError", "TOKEN_ENVIRONMENT_VARIABLE", "COOKIE_NAME", "load_token", "check_bind", "is_loopback", "Access", "access_of"]

TOKEN_ENVIRONMENT_VARIABLE = "PGFLEET_CONSOLE_TOKEN"
COOKIE_NAME = "pgfleet_console"


class ConsoleError(Exception):
    """The console cannot start as asked (a bad token file, an unsafe bind)."""


def load_token(token_file: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The console's token: the first line of ``token_file`` when given, else the environment
    variable ``PGFLEET_CONSOLE_TOKEN``, else None (no token: only a loopback bind is allowed)."""
    if token_file:
        path = Path(token_file)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConsoleError(f"cannot read the console token file {path}: {exc.strerror or exc}") from None
        token = (text.strip().splitlines() or [""])[0].strip()
        if not token:
            raise ConsoleError(f"the console token file {path} is empty")
        return token
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENVIRONMENT_VARIABLE, "").strip()
    return token or None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): reachable from this host only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so it is not loopback


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve an address other hosts can reach without a token."""
    if token is None and not is_loopback(host):
        raise ConsoleError(
            f"refusing to serve the console on {host} without a token: anyone who can reach it could cancel "
            f"workflows. Give one with --token-file FILE or the environment variable {TOKEN_ENVIRONMENT_VARIABLE}, "
            "or bind 127.0.0.1"
        )


def session_value(token: str) -> str:
    """What the login cookie holds: an HMAC of the token (the token itself never leaves the server)."""
    return hmac.new(token.encode(), b"pgfleet-console-session", hashlib.sha256).hexdigest()


def token_matches(token: str, given: str) -> bool:
    """``given == token``, in constant time."""
    return hmac.compare_digest(token.encode(), given.encode())


@dataclass(frozen=True)
class Access:
    """What a request may do: ``allowed`` to see pages at all; ``with_token`` whether it
    proved the token (False when the console has none); ``client`` its address, for the logs."""

    allowed: bool
    with_token: bool
    client: str


def access_of(request: Request, token: str | None) -> Access:
    """Judge a request against the console's token (none: every request is allowed)."""
    client = request.client.host if request.client else "unknown"
    if token is None:
        return Access(True, False, client)
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and given and token_matches(token, given.strip()):
        return Access(True, True, client)
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and hmac.compare_digest(session_value(token).encode(), cookie.encode()):
        return Access(True, True, client)
    return Access(False, False, client)
