"""``pgfleet console``: the fleet's web console (issue #13), a Starlette app on uvicorn.

Pages: ``/`` the fleet (members, supervisors, the leader and its log, recent takeovers),
``/queues`` (and ``/api/queues`` as JSON), ``/workflows`` (filtered, keyset-paged) and
``/workflows/{id}`` (inputs, outcome, ownership history, steps, events, streams, messages), with
``/workflows/{id}/cancel|resume|fork`` confirmed on pages of their own. It reads through
``sysdb``'s doors as the CLI does and acts through the same runtime functions.

Security: 127.0.0.1 by default; any other address needs a token (``--token-file`` or
``PGFLEET_CONSOLE_TOKEN``), which every page then requires (``/login`` sets a cookie, or send
``Authorization: Bearer``); ``--read-only`` refuses actions; ``--hide-values`` shows no values;
Jinja2 autoescapes everything and the pages allow no script.
"""

from __future__ import annotations

from .app import LOOPBACK_HOSTS, create_app
from .security import TOKEN_ENVIRONMENT_VARIABLE, ConsoleError, check_bind, is_loopback, load_token
from .server import ConsoleServer, serve, start_in_thread
from .state import queue_figures

__all__ = [
    "create_app",
    "LOOPBACK_HOSTS",
    "serve",
    "start_in_thread",
    "ConsoleServer",
    "ConsoleError",
    "load_token",
    "check_bind",
    "is_loopback",
    "queue_figures",
    "TOKEN_ENVIRONMENT_VARIABLE",
]
