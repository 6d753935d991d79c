"""``pgfleet chaos``: run a fleet of real nodes of an app under a seeded storm of faults, check
the invariants from the system database, and print (or write) what was found."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from ..chaos.html_report import write_html
from ..chaos.json_report import to_json
from ..chaos.model import FAULT_KINDS
from ..chaos.options import BUILTIN_APP, ChaosOptions, ChaosSetupError, ChaosUsageError, parse_fault_kinds
from ..chaos.run import ChaosRun
from ..chaos.table import format_summary
from ..chaos.workload import WorkloadError
from ..settings import load_settings
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError

__all__ = ["add_chaos_arguments", "chaos_options", "run_chaos"]


def add_chaos_arguments(chaos: argparse.ArgumentParser) -> None:
    """The flags of `pgfleet chaos`."""
    chaos.add_argument("app", nargs="?", default=None, metavar="APP",
                       help="the program the nodes supervise (default: pgfleet's built-in app and workload)")  # fmt: skip
    chaos.add_argument("--nodes", type=int, default=3, metavar="K", help="nodes, each a `pgfleet supervise` tree (default 3)")
    chaos.add_argument("--workers", type=int, default=2, metavar="N", help="worker processes per node (default 2)")
    chaos.add_argument("--seconds", type=float, default=120.0, metavar="SEC", help="how long the faults go on (default 120)")
    chaos.add_argument("--seed", type=int, default=None, metavar="N", help="the seed of the fault plan (default: random, printed)")
    chaos.add_argument("--workload", default=None, metavar="MODULE:FUNCTION",
                       help="your function that starts work through your app's API and returns the workflow ids")  # fmt: skip
    chaos.add_argument("--faults", default=None, metavar="K1,K2",
                       help=f"fault kinds: {','.join(FAULT_KINDS)}, 'all' or 'none' (default: every kind this run can do)")
    chaos.add_argument("--netns", action="store_true", help="put each node in its own network namespace (root on Linux), "
                       "so that partition cuts a real link")  # fmt: skip
    chaos.add_argument("--config", default=None, metavar="FILE", help="the nodes' TOML settings (your heartbeat, timeouts, ...)")
    chaos.add_argument("--database-url", default=None, metavar="URL",
                       help="a server to make the run's scratch database on (default: an embedded server of its own)")  # fmt: skip
    chaos.add_argument("--drain-seconds", type=float, default=180.0, metavar="SEC",
                       help="how long the work gets to finish after the faults (default 180)")  # fmt: skip
    chaos.add_argument("--keep", action="store_true", help="keep the database and node logs even when the run passes")
    chaos.add_argument("--workdir", default=None, metavar="DIR", help="where node logs and the embedded server go (default: a temp dir)")
    chaos.add_argument("--report", default=None, metavar="FILE.html", help="write a self-contained HTML report here")
    chaos.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as one JSON document")
    chaos.set_defaults(handler=run_chaos)


def chaos_options(args: argparse.Namespace) -> ChaosOptions:
    """The run's options from the parsed flags; raises ChaosUsageError."""
    faults = parse_fault_kinds(args.faults) if args.faults is not None else list(FAULT_KINDS)
    # The nodes' settings: the system database and the member timeout come from the flag, the
    # --config file or the environment, as `pgfleet supervise` would take them.
    settings = load_settings(args.config, {"system_database_url": args.database_url}, os.environ)
    worker_config = settings["worker_config"]
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "big")
    options = ChaosOptions(
        app=args.app or BUILTIN_APP, nodes=args.nodes, workers=args.workers, seconds=args.seconds, seed=seed,
        workload=args.workload, faults=faults, faults_given=args.faults is not None, netns=args.netns,
        config=Path(args.config) if args.config else None, database_url=worker_config.get("system_database_url"),
        database_url_flag=args.database_url is not None,
        member_timeout_sec=float(worker_config.get("member_timeout_sec") or 5.0),
        drain_seconds=args.drain_seconds, keep=args.keep, workdir=Path(args.workdir) if args.workdir else None,
        json=bool(getattr(args, "json", False)), report=Path(args.report) if args.report else None,
    )  # fmt: skip
    options.validate()
    return options


def _stop_on_signals(run: ChaosRun) -> None:
    """Ctrl-C or SIGTERM ends the run at its next wait (a fault being held is lifted first) and
    everything it started is stopped and removed; a second one stops waiting for that."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if run.interrupted:
            raise KeyboardInterrupt
        run.interrupt()
        print(f"pgfleet chaos: {signal.Signals(signum).name}: stopping the run and cleaning up", file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _quiet_expected_noise() -> None:
    """The run's own connections see every fault it injects (a restarted server, terminated
    sessions); their retry warnings would bury the progress line. Errors still show."""
    for name in ("pgfleet", "psycopg"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_chaos(args: argparse.Namespace) -> int:
    _quiet_expected_noise()
    try:
        options = chaos_options(args)
        run = ChaosRun(options, progress_stream=sys.stderr)
    except (ChaosUsageError, WorkloadError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    _stop_on_signals(run)
    print(f"pgfleet chaos: seed {options.seed}; node logs in {run.workdir}", file=sys.stderr)
    try:
        result = run.execute()
    except KeyboardInterrupt:
        print("pgfleet chaos: interrupted; every node, namespace and server it started is stopped", file=sys.stderr)
        return 130
    except (ChaosUsageError, WorkloadError) as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except ChaosSetupError as exc:
        raise CliError(f"{exc}\n(node logs: {run.workdir})", EXIT_FAILED) from None
    if options.report is not None:
        write_html(result, options.report)
    if options.json:
        print(json.dumps(to_json(result)))
    else:
        print(format_summary(result))
    for where in run.kept:
        print(f"kept: {where}", file=sys.stderr)
    if options.report is not None:
        print(f"report: {options.report}", file=sys.stderr)
    return EXIT_OK if result.passed else EXIT_FAILED
