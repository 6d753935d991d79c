"""``pgfleet console`` (the web console in the foreground) and ``pgfleet supervise
--console-port N`` (the same console on a thread of the supervisor)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from sysdb import SystemDatabase, describe_url, resolve_system_database_url

from .database import _connect_db, _read_url
from .errors import EXIT_OK, EXIT_USAGE, CliError

__all__ = ["add_console_command", "add_supervise_console_arguments", "supervised_console"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# The console serves a few people at once: a small pool, not the CLI's single connection.
POOL_SIZE = 4


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text!r}")
    return int(text)


def add_console_command(commands: Any, add_read_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `pgfleet console` to the subcommands."""
    console = commands.add_parser(
        "console", help="the fleet's web console (members, queues, workflows; cancel, resume, fork)",
        description="Serve the web console: the fleet, its queues and workflows, with cancel, resume and fork\n"
        "confirmed on pages of their own. Binds 127.0.0.1 unless --host says otherwise; any other address\n"
        "needs a token (--token-file FILE or PGFLEET_CONSOLE_TOKEN; never on the command line), which\n"
        "every page then asks for (/login, or the header Authorization: Bearer <token>).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    console.add_argument("--host", default=DEFAULT_HOST, metavar="ADDR", help=f"the address to listen on (default {DEFAULT_HOST})")
    console.add_argument("--port", type=_port, default=DEFAULT_PORT, metavar="PORT", help=f"the port (default {DEFAULT_PORT})")
    console.add_argument("--read-only", action="store_true", help="show everything, change nothing (actions answer 403)")
    console.add_argument("--token-file", default=None, metavar="FILE", help="the token every request must carry (first line of FILE)")
    console.add_argument("--hide-values", action="store_true", help="show no workflow input, output, error, event, stream or message value")
    add_read_options(console)
    console.set_defaults(handler=_console)


def add_supervise_console_arguments(supervise: argparse.ArgumentParser) -> None:
    """``pgfleet supervise``'s console options."""
    supervise.add_argument("--console-port", type=_port, default=None, metavar="PORT", help="also serve the web console on this port")
    supervise.add_argument("--console-host", default=DEFAULT_HOST, metavar="ADDR", help=f"the console's address (default {DEFAULT_HOST})")
    supervise.add_argument("--console-token-file", default=None, metavar="FILE", help="the console's token (else PGFLEET_CONSOLE_TOKEN)")
    supervise.add_argument("--console-read-only", action="store_true", help="the console changes nothing")
    supervise.add_argument("--console-hide-values", action="store_true", help="the console shows no workflow values")


def _checked_token(token_file: str | None, host: str) -> str | None:
    """The console's token, checked against the address it is to serve (a refusal is a usage
    error, said before the database is touched)."""
    # Imported here: every other pgfleet command starts without loading Starlette and uvicorn.
    from ..console import ConsoleError, check_bind, load_token

    try:
        token = load_token(token_file)
        check_bind(host, token)
    except ConsoleError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return token


def _hosts(token: str | None) -> tuple[str, ...] | None:
    """Without a token the console is loopback-only: it answers only loopback Host headers."""
    from ..console.app import LOOPBACK_HOSTS

    return LOOPBACK_HOSTS if token is None else None


def _console(args: argparse.Namespace) -> int:
    from ..console import create_app, serve

    token = _checked_token(args.token_file, args.host)
    url, source = _read_url(args, os.environ)
    db = _connect_db(url, source, float(args.timeout), pool_size=POOL_SIZE, application_name="pgfleet-console")
    try:
        app = create_app(db, read_only=args.read_only, token=token, hide_values=args.hide_values, allowed_hosts=_hosts(token))
        print(f"pgfleet console on http://{args.host}:{args.port}/ (system database {describe_url(url)}; Ctrl-C stops it)", flush=True)
        try:
            serve(app, host=args.host, port=args.port, token=token)
        except OSError as exc:  # the port is taken, or the address is not this host's
            raise CliError(str(exc)) from None
    finally:
        db.close()
    return EXIT_OK


@contextlib.contextmanager
def supervised_console(args: argparse.Namespace, worker_config: dict[str, Any]) -> Iterator[None]:
    """Serve the console beside a supervisor while the block runs (nothing without
    ``--console-port``), on the supervisor's system database."""
    if getattr(args, "console_port", None) is None:
        yield
        return
    from ..console import create_app, start_in_thread

    token = _checked_token(args.console_token_file, args.console_host)
    url = resolve_system_database_url(worker_config.get("system_database_url"), worker_config.get("embedded_data_dir"))
    db = SystemDatabase(url, pool_size=POOL_SIZE, application_name="pgfleet-console")
    db.open()  # migrates if the supervisor has not yet (under the migration lock: safe to race)
    try:
        app = create_app(db, read_only=args.console_read_only, token=token, hide_values=args.console_hide_values,
                         allowed_hosts=_hosts(token))
        try:
            server = start_in_thread(app, host=args.console_host, port=args.console_port, token=token)
        except OSError as exc:
            raise CliError(str(exc)) from None
        try:
            yield
        finally:
            server.stop()
    finally:
        db.close()
