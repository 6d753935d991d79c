"""The ``pgfleet`` argument parser: every subcommand, its options and the handler it runs."""

from __future__ import annotations

import argparse
import datetime
from typing import Any

from sysdb.embedded import DEFAULT_BASE_DIR

from .arg_types import int_at_least, positive_float
from .chaos_command import add_chaos_arguments
from .check_command import _check
from .console_command import add_console_command, add_supervise_console_arguments
from .db_commands import _db, _migrate
from .prune_command import add_prune_arguments
from .status_commands import _queue_list, _status
from .supervise_command import _supervise
from .workflow_commands import _STATUSES, _workflow_cancel, _workflow_get, _workflow_list, _workflow_resume, _workflow_steps

DEFAULT_TIMEOUT_SEC = 10.0
DEFAULT_LIST_LIMIT = 50


def _iso_time(text: str) -> str:
    try:
        datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2025-01-31T12:00:00+00:00)") from None
    return text


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _add_json(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a --json given before the subcommand is not reset by the subcommand's default.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON document on stdout")


def _add_read_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, metavar="URL", help="the system database (default: --config, then "
                        "PGFLEET_SYSTEM_DATABASE_URL / DBOS_SYSTEM_DATABASE_URL, then the running embedded server)")
    parser.add_argument("--config", default=None, metavar="FILE", help="take system_database_url / embedded_data_dir from this TOML file")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=f"the embedded server's directory when no URL is given (default: ./{DEFAULT_BASE_DIR})")
    parser.add_argument("--timeout", type=positive_float, default=DEFAULT_TIMEOUT_SEC, metavar="SEC",
                        help=f"give up on the database after this long (default: {DEFAULT_TIMEOUT_SEC:g})")
    _add_json(parser)


def _subparser(commands: Any, name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=description or summary, formatter_class=_Formatter)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgfleet",
        description="pgfleet: durable Python workflows run by a fleet of executors sharing one PostgreSQL",
        epilog="exit codes: 0 ok, 1 operation failed, 2 bad usage or config, 3 not running (db status/url)",
        formatter_class=_Formatter,
    )
    parser.add_argument("--json", action="store_true", default=False, help="print one JSON document on stdout")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (_add_supervise, _add_status, _add_workflow, _add_queue, _add_check, _add_migrate, _add_db, _add_chaos):
        add_command(commands)
    add_console_command(commands, _add_read_options)
    return parser


def _add_supervise(commands: Any) -> None:
    """Add `pgfleet supervise` (run and watch a node's workers)."""
    supervise = _subparser(
        commands, "supervise", "run and watch a node's worker processes",
        "Run N worker processes of APP on this node and restart them when they die. Worker slots are\n"
        "executors NODE-0..NODE-<N-1>. Settings: flags > --config FILE (TOML) > PGFLEET_* environment.",
    )
    supervise.add_argument("app", nargs="?", default=None, metavar="APP", help="the program to run (or 'app' in the config file)")
    supervise.add_argument("--workers", type=int, default=None, metavar="N", help="worker processes (default 1)")
    supervise.add_argument("--name", default=None, metavar="NODE", help="the node name; executor ids are NODE-<slot> (default: host name)")
    supervise.add_argument("--queues", action="append", default=None, metavar="Q1,Q2",
                           help="serve only these queues (comma-separated, repeatable; default: every declared queue)")
    supervise.add_argument("--grace", type=float, default=None, metavar="SEC", help="how long stopping workers get to finish (default 30)")
    supervise.add_argument("--metrics-port", type=int, default=None, metavar="PORT", help="serve Prometheus metrics on this port")
    supervise.add_argument("--boot-deadline", type=float, default=None, metavar="SEC", help="how long a worker gets to launch (default 30)")
    supervise.add_argument("--config", default=None, metavar="FILE", help="a TOML file of settings (flags override it; it overrides the environment)")
    supervise.add_argument("--database-url", default=None, metavar="URL", help="the system database for every worker")
    supervise.add_argument("--data-dir", default=None, metavar="DIR", help="the embedded server's directory when no URL is configured")
    supervise.add_argument("--log-level", default=None, metavar="LEVEL", help="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    add_supervise_console_arguments(supervise)
    _add_json(supervise)
    supervise.set_defaults(handler=_supervise)


def _add_chaos(commands: Any) -> None:
    """Add `pgfleet chaos` (failover testing of an app on a fleet of real nodes)."""
    chaos = _subparser(
        commands, "chaos", "kill, pause and partition a fleet running your app; check nothing was lost",
        "Start K nodes (each `pgfleet supervise APP`) on a scratch system database, start work, inject a\n"
        "seeded schedule of faults, drain, and check from the database that every workflow reached its\n"
        "outcome, no completed step ran again, no stale owner acted, limits held and one leader led.\n"
        "exit codes: 0 every invariant held, 1 one was violated (the evidence is printed), 2 bad usage,\n"
        "130 interrupted (everything started is stopped and removed)",
    )
    add_chaos_arguments(chaos)


def _add_status(commands: Any) -> None:
    """Add `pgfleet status`."""
    status = _subparser(
        commands, "status", "members, the leader, queues and recent takeovers",
        "Show the fleet: every member (node, slot, pid, heartbeat age, epoch, leader mark, running\n"
        "workflows), the leader's term, per-queue counts and the latest takeovers.",
    )
    _add_read_options(status)
    status.add_argument("--takeovers", type=int_at_least(0), default=20, metavar="N", help="how many recent takeovers to show (default 20)")
    status.set_defaults(handler=_status)


def _add_workflow(commands: Any) -> None:
    """Add `pgfleet workflow list|get|steps|cancel|resume|prune`."""
    workflow = _subparser(commands, "workflow", "list, inspect, cancel, resume and prune workflows")
    actions = workflow.add_subparsers(dest="action", required=True, metavar="ACTION")
    wf_list = _subparser(
        actions, "list", "list workflows, newest first",
        "List workflows, newest first, filtered. Rows carry no inputs or outputs (`workflow get` shows them).",
    )
    wf_list.add_argument("--status", action="append", metavar="S1,S2", help=f"only these statuses ({', '.join(_STATUSES)})")
    wf_list.add_argument("--name", action="append", metavar="NAME", help="only workflows of these names")
    wf_list.add_argument("--queue", action="append", metavar="QUEUE", help="only workflows on these queues")
    wf_list.add_argument("--executor", action="append", metavar="ID", help="only workflows owned by these executors")
    wf_list.add_argument("--app-version", action="append", metavar="VERSION", help="only these application versions")
    wf_list.add_argument("--user", action="append", metavar="USER", help="only workflows of these authenticated users")
    wf_list.add_argument("--prefix", default=None, metavar="TEXT", help="only workflow ids starting with TEXT")
    wf_list.add_argument("--queued", action="store_true", help="only workflows waiting or running on a queue")
    wf_list.add_argument("--start-time", type=_iso_time, default=None, metavar="ISO", help="created at or after")
    wf_list.add_argument("--end-time", type=_iso_time, default=None, metavar="ISO", help="created at or before")
    wf_list.add_argument("--limit", type=int_at_least(0), default=DEFAULT_LIST_LIMIT, metavar="N",
                         help=f"at most N (default {DEFAULT_LIST_LIMIT}; 0 for all)")
    wf_list.add_argument("--offset", type=int_at_least(0), default=0, metavar="N", help="skip the first N")
    wf_list.add_argument("--oldest-first", action="store_true", help="oldest first instead of newest first")
    _add_read_options(wf_list)
    wf_list.set_defaults(handler=_workflow_list)

    for name, summary, handler in (
        ("get", "one workflow's status, inputs and outcome", _workflow_get),
        ("steps", "one workflow's recorded steps", _workflow_steps),
    ):
        sub = _subparser(actions, name, summary)
        sub.add_argument("workflow_id", metavar="WORKFLOW_ID")
        sub.add_argument("--raw", action="store_true", help="show stored values as stored (base64 pickles), without decoding them")
        _add_read_options(sub)
        sub.set_defaults(handler=handler)

    cancel = _subparser(
        actions, "cancel", "cancel a workflow that has not finished",
        "Mark a workflow CANCELLED unless it has finished; its owner stops at its next checkpoint.",
    )
    cancel.add_argument("workflow_id", metavar="WORKFLOW_ID")
    _add_read_options(cancel)
    cancel.set_defaults(handler=_workflow_cancel)

    resume = _subparser(
        actions, "resume", "send a cancelled or dead-lettered workflow back to work",
        "Put a CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow on the internal queue; any executor\n"
        "runs it from its first unfinished step. Needs no running executor to succeed.",
    )
    resume.add_argument("workflow_id", metavar="WORKFLOW_ID")
    _add_read_options(resume)
    resume.set_defaults(handler=_workflow_resume)

    prune = _subparser(
        actions, "prune", "delete finished workflows older than a cutoff",
        "Delete finished workflows created more than --older-than ago, with their steps, events, streams\n"
        "and messages, in batches (each its own short transaction). PENDING, ENQUEUED and DELAYED never go.",
    )
    add_prune_arguments(prune)
    _add_read_options(prune)


def _add_queue(commands: Any) -> None:
    """Add `pgfleet queue list`."""
    queue = _subparser(commands, "queue", "queues and their work")
    queue_actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")
    queue_list = _subparser(
        queue_actions, "list", "enqueued, delayed and running workflows per queue",
        "Per queue: workflows waiting (ENQUEUED, DELAYED) and running (PENDING). Queue limits are\n"
        "declared in code; they are shown only when dbos.queues records them.",
    )
    _add_read_options(queue_list)
    queue_list.set_defaults(handler=_queue_list)


def _add_check(commands: Any) -> None:
    """Add `pgfleet check`."""
    check = _subparser(
        commands, "check", "validate the settings and reach the database, starting nothing",
        "Validate the supervisor's settings (flags > --config FILE > environment) and connect once to\n"
        "the system database (SELECT 1; no migration). With no URL anywhere, report whether the\n"
        "embedded server that would be used is running.\n\n"
        "exit codes: 0 ok, 1 database unreachable, 2 bad config",
    )
    check.add_argument("--config", default=None, metavar="FILE", help="the TOML settings file to validate")
    check.add_argument("--database-url", default=None, metavar="URL", help="the system database (overrides the file and the environment)")
    check.add_argument("--data-dir", default=None, metavar="DIR", help="the embedded server's directory when no URL is configured")
    check.add_argument("--timeout", type=positive_float, default=5.0, metavar="SEC", help="connect timeout (default 5)")
    _add_json(check)
    check.set_defaults(handler=_check)


def _add_migrate(commands: Any) -> None:
    """Add `pgfleet migrate`."""
    migrate = _subparser(
        commands, "migrate", "create and migrate the system database",
        "Create the system database if needed and apply pgfleet's migrations. With no URL, the\n"
        "embedded server is started.",
    )
    migrate.add_argument("--database-url", default=None, metavar="URL", help="system database URL (default: environment, else embedded)")
    migrate.add_argument("--data-dir", default=None, metavar="DIR", help="embedded server directory when no URL is given")
    _add_json(migrate)
    migrate.set_defaults(handler=_migrate)


def _add_db(commands: Any) -> None:
    """Add `pgfleet db start|stop|status|url`."""
    db = _subparser(
        commands, "db", "manage the embedded Postgres of this host",
        "start: start it (or find it running); stop: stop it (data stays); status: exit 0 if running,\n"
        "3 if not; url: print its URL (exit 3 if not running).",
    )
    db.add_argument("action", choices=["start", "stop", "status", "url"])
    db.add_argument("--data-dir", default=str(DEFAULT_BASE_DIR), metavar="DIR", help="where the embedded server lives (default: ./.pgfleet)")
    _add_json(db)
    db.set_defaults(handler=_db)
