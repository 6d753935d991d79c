"""The ``pgfleet`` command.

    pgfleet supervise [APP] [--workers N] [--name NODE] [--queues Q1,Q2] [--grace S]
                      [--metrics-port P] [--boot-deadline S] [--config FILE]   run a node's workers
    pgfleet status                                   members, the leader, queues, recent takeovers
    pgfleet workflow list|get|steps|cancel|resume    inspect and steer workflows
    pgfleet workflow prune --older-than 30d          delete finished workflows (retention)
    pgfleet console [--host H --port P]              the fleet's web console
    pgfleet chaos [APP --workload MODULE:FUNCTION]   failover testing: kill, pause, partition, check
    pgfleet queue list                               queued and running work per queue
    pgfleet check [--config FILE]                    validate settings and reach the database
    pgfleet migrate [--database-url URL]             create and migrate the system database
    pgfleet db start|stop|status|url [--data-dir DIR]  the embedded Postgres of this host

Every command takes ``--json`` (one JSON document on stdout) and ``--help``.

Exit codes: 0 success; 1 the operation failed (database unreachable, workflow not found);
2 bad usage or configuration; 3 not running (``db status``, ``db url``).

Read commands (status, workflow, queue) find the system database in this order: ``--database-url``,
the ``--config`` file's ``system_database_url``, ``PGFLEET_SYSTEM_DATABASE_URL`` /
``DBOS_SYSTEM_DATABASE_URL``, else the embedded server in ``--data-dir`` if it is running
(they never start it).
"""

from __future__ import annotations

# The package's interface: the `cluster.process.cli:main` console script and what tests import.
# `__all__` lists every re-export, so linters and type checkers see them as the interface
# rather than unused imports.
from .entry_point import main
from .errors import EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK, EXIT_USAGE, CliError
from .parser import DEFAULT_LIST_LIMIT, DEFAULT_TIMEOUT_SEC, build_parser
from .status_commands import _node_slot as _node_slot  # private, but tests/test_cli.py imports it from here
from .supervise_command import build_supervisor_options, supervisor_options_kwargs, supervisor_settings

__all__ = [
    "main",
    "build_parser",
    "build_supervisor_options",
    "supervisor_options_kwargs",
    "supervisor_settings",
    "CliError",
    "EXIT_OK",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_NOT_RUNNING",
    "DEFAULT_LIST_LIMIT",
    "DEFAULT_TIMEOUT_SEC",
]
