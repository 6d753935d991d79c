"""Queue benchmark: pgfleet (and optionally DBOS Transact) on the same Postgres.

Run it from anywhere with the project's virtual environment::

    /work/venv/bin/python ops/bench/queue.py                          # pgfleet alone
    /work/venv/bin/python ops/bench/queue.py --dbos-python /path/to/venv/bin/python
    /work/venv/bin/python ops/bench/queue.py --database-url postgresql://u:p@host:5432/postgres
    /work/venv/bin/python ops/bench/queue.py --embedded-dir /tmp/pgfleet-qbench --count 1000 --json

What is measured
----------------
One workflow, ``qbench_one_step(enqueued_at)``: it notes ``time.time()`` on entry, calls one
trivial checkpointed step and returns (entry time - ``enqueued_at``). It sits on the queue
``qbench`` declared ``Queue("qbench", worker_concurrency=W)`` (``--worker-concurrency``,
default 32) in every process, with no global concurrency or rate limit. Every process of a run
sets the same ``application_version``, so DBOS's version filter never hides work.

* **enqueue** -- one process enqueues ``--count`` (default 2,000) workflows, one after the
  other from one thread outside any workflow (``Queue.enqueue``), timed with
  ``time.perf_counter``: enqueues/s and the p50/p99 of one call. That process serves no
  queue: pgfleet's config ``"queues": []`` and DBOS's ``DBOS.listen_queues([])`` (both still
  serve their internal queue, which is empty), so nothing is dequeued while it runs and both
  engines pay for exactly the insert plus whatever they do around it (pgfleet's throttled
  NOTIFY, for instance). ``--warmup`` (default 50) untimed enqueues go to another queue that
  nobody serves. It runs once before each drain below; the reported rate is their median.

* **drain** -- for each K in ``--processes`` (default 1,2,4) on a fresh database: ``--count``
  workflows are enqueued (above), then the parent locks every one of their rows
  (``SELECT ... FOR UPDATE`` in an open transaction), starts K worker processes with distinct
  executor ids that serve ``qbench``, waits until every one has launched and reported ready
  plus ``--settle`` seconds, and commits: both engines claim with ``FOR UPDATE SKIP LOCKED``,
  so until then every worker polls and finds nothing, and afterwards all K see the work on
  their next poll. Launch order and launch time therefore favour nobody. The drain rate is
  ``count / (last completed_at - first started_at_epoch_ms)`` read back from
  ``dbos.workflow_status`` (pgfleet stamps both with the worker's clock, DBOS with the
  database's; all on this host), i.e. from the first dequeue to the last completion. The
  time from the release to the first dequeue (each engine's poll phase, <= its polling
  interval) is reported separately and not counted. The parent polls the table every 50 ms
  to know when all are SUCCESS; the workers' CPU time while serving is reported too.
  ``--history ROWS`` first adds that many finished workflows of another queue to the
  database (a system database with history, as in production; default none).

* **the raw bound** (issue #14) -- in the same run and on the same server, the raw bound of
  ``bound.py`` (N psycopg connections, each committing single-row INSERTs shaped like a step
  checkpoint) with N = K x 20 connections for each K of ``--processes`` (20 is both engines'
  default system database pool per process), for ``--bound-seconds`` (default 3; 0 skips it)
  before and again after the engines, the higher being the bound. The drain's durable writes/s
  are counted as the issue counts them: a queued 1-step workflow is enqueue + claim + 1 step +
  finish = 4 writes, so writes/s = drain wf/s x 4 and share = writes/s / raw commits/s. It is a
  nominal count, the same for both engines (see ``queue_drain.py`` for what it over-counts).

* **enqueue -> start latency** -- on a fresh database one worker serves ``qbench`` and sits
  idle; a second process (serving no queue) enqueues ``--latency-count`` (default 200)
  workflows, one every I ms on a fixed schedule without waiting for them, passing
  ``time.time()`` taken just before ``enqueue``. Latency is the workflow's own ``time.time()``
  on entry minus that: both clocks are this host's wall clock (no database clock involved),
  and it includes everything until user code runs (insert, wake-up or poll, claim, dispatch
  to a thread). ``--latency-warmup`` (default 10) first ones are discarded. p50/p90/p99/max
  in ms. I comes from ``--latency-interval-ms`` (default ``50,200``: each value is one run on
  its own database); the first value is the one checked against the target. Each workflow
  finishes in a few ms, so the queue is idle at every enqueue in both runs; the second one
  shows what is left when enqueues from one process are further apart than pgfleet's NOTIFY
  throttle window (100 ms).

* **idle cost** -- on a fresh database one executor that declares and serves N idle queues
  (``--idle-queues``, default 1,2; the queues are empty and nothing is enqueued) runs for
  ``--idle-seconds`` (default 10) after launching and ``--idle-settle`` (default 3) seconds of
  grace. Alone, a pgfleet executor is also the cluster's leader and does the leader's duties;
  so the first queue count is measured once more in a second executor started ``--settle``
  seconds after an uncounted peer with the same queues (``--no-idle-with-peer`` skips it):
  that is what every other executor of a fleet costs. It connects through a small TCP proxy started by this benchmark that counts what the
  client sends: every simple ``Query`` message and every ``Execute`` of the extended protocol
  is one statement (BEGIN and COMMIT included), attributed to its SQL text through the
  ``Parse``/``Bind`` messages; new connections are counted too. This works on any server and
  counts exactly one process's traffic. The proxy answers ``N`` to SSL requests, so it is
  skipped (and the cost not reported) for a URL with ``sslmode=require`` or a unix-socket
  host. When the server has ``pg_stat_statements`` in ``shared_preload_libraries`` the
  benchmark also reports the server-side count for the database (sum of ``calls`` delta) as a
  cross-check: it covers the whole database (the peer below included) and does not count
  empty queries (``;``, SQLAlchemy's connection ping). The embedded server does not preload
  it.

With ``--dbos-python PATH`` (the python of a virtual environment where ``dbos`` is installed)
everything runs under DBOS Transact too, against the same server, each engine on its own
databases, one engine after the other. ``ratio`` is always "how many times better pgfleet
is": pgfleet/DBOS for rates, DBOS/pgfleet for latencies and idle statements.

How it runs
-----------
The parent only manages databases, the proxy and the worker processes (this file with
``--worker ROLE``, under this interpreter for pgfleet and the DBOS python for DBOS), and
prints. The code is split by job: ``queue_worker.py`` (the worker roles), ``queue_run.py``
(worker processes, fresh databases), ``queue_drain.py`` (drain, history, bound),
``queue_latency.py``, ``queue_idle.py`` (with the counting proxy) and ``queue_report.py``;
this file holds the command line and the parent's sequence. Databases are named ``qbench_<engine>_<timestamp>_<phase>`` and dropped afterwards
(``--keep-databases`` keeps them). A worker prints ``PGFLEET_BENCH_READY <json>`` once
launched (serving roles) and one ``PGFLEET_BENCH_RESULT <json>`` line at the end; a serving
worker stops when it reads ``STOP`` (or EOF) on stdin. Server handling is the one of
``workflows.py`` (``common.BenchServer``): without ``--database-url`` the embedded server
under ``--embedded-dir`` is started or joined with durability on, and stopped at the end if
this run started it (unless ``--keep-server``).

Targets (from the issue): drain >= 5x DBOS with one process; enqueue -> start p50 <= 10 ms
(DBOS polls once a second); an executor with idle queues issues at most a couple of
statements per second (checked here as <= 2.0/s).

This file is named ``queue.py`` like the standard library's ``queue`` module, so when it runs
as a script it first removes its own directory from ``sys.path`` (or every ``import queue``
in the process, threading's and psycopg-pool's included, would load this file), and loads its
sibling modules by path instead, each under a ``pgfleet_bench_<name>`` module name.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # See the last paragraph of the docstring: never shadow the standard library's ``queue``.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path
from typing import Any

if __package__:
    from . import common, queue_drain, queue_idle, queue_latency, queue_report, queue_run, queue_worker
else:  # a script: common by path (this directory is off sys.path, see above), then its siblings
    _spec = importlib.util.spec_from_file_location("pgfleet_bench_common", Path(__file__).resolve().parent / "common.py")
    assert _spec is not None and _spec.loader is not None
    common = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = common
    _spec.loader.exec_module(common)
    # In dependency order: each module finds the ones before it in sys.modules.
    for _sibling in ("sql_alone", "paired", "bound"):
        common.load_sibling(_sibling)
    queue_worker = common.load_sibling("queue_worker")
    queue_run = common.load_sibling("queue_run")
    queue_drain = common.load_sibling("queue_drain")
    queue_latency = common.load_sibling("queue_latency")
    queue_idle = common.load_sibling("queue_idle")
    queue_report = common.load_sibling("queue_report")


# ---------------------------------------------------------------------------------- parent


def run_engine(run: Any) -> dict[str, Any]:
    """Every phase of one engine (``queue_run.EngineRun``), each on a fresh database."""
    a = run.args
    drains = {str(k): queue_drain.drain(run, k) for k in a.processes}
    latency = {f"{i:g}": queue_latency.latency(run, i) for i in a.latency_interval_ms} if a.latency_count > 0 else {}
    idle = {str(q): queue_idle.idle(run, q) for q in a.idle_queues}
    if a.idle_with_peer and a.idle_queues:
        idle[f"{a.idle_queues[0]}+peer"] = queue_idle.idle(run, a.idle_queues[0], peer=True)
    rates = [d["enqueue"]["enqueue_per_s"] for d in drains.values()]
    return {
        "engine": run.engine,
        **run.info,
        "enqueue_per_s": statistics.median(rates) if rates else None,
        "enqueue_per_s_runs": rates,
        "drain": drains,
        "latency": latency,
        "idle": idle,
    }


def _logs_to_stderr() -> None:
    """structlog prints to stdout by default (the embedded server's start/stop lines): keep
    this process's stdout for the report (``--json`` must be parseable)."""
    try:
        import structlog
    except ImportError:  # pragma: no cover - pgfleet depends on it
        return
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def _measure(args: argparse.Namespace, bench_server: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bound before, every engine, the bound after: (runs, bounds)."""
    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{os.getpid()}"
    url = str(bench_server.url)
    drain_bound = queue_drain.DrainBound(url, stamp, args.processes, args.bound_seconds, args.keep_databases)
    runs: dict[str, dict[str, Any]] = {}
    try:
        drain_bound.before()
        runs["pgfleet"] = run_engine(queue_run.EngineRun("pgfleet", sys.executable, url, stamp, args))
        if args.dbos_python:
            runs["dbos"] = run_engine(queue_run.EngineRun("dbos", args.dbos_python, url, stamp, args))
        bounds = drain_bound.after()
    finally:
        drain_bound.close()
    return runs, bounds


def _print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    runs, bounds = report["runs"], report["bounds"]
    print(f"server {report['server']}  count {args.count}  worker_concurrency {args.worker_concurrency}  "
          + (f"history {args.history} rows  " if args.history else "") +
          f"({'embedded, durability on' if report['embedded'] else 'external server'})")
    for engine, run in runs.items():
        print(f"{engine}: {run.get('version', '?')} on python {run.get('python', '?')}"
              + ("  [schema migrated without uuid-ossp]" if run.get("dbos_migration_without_uuid_ossp") else ""))
    print()
    print(queue_report.table(runs, args))
    print()
    if bounds:
        print(f"drain against the raw bound: writes/wf = {queue_drain.WRITES_PER_WORKFLOW} (enqueue + claim + 1 step + "
              "finish, issue #14's count, used for both engines); connections = processes x "
              f"{queue_drain.POOL_SIZE} (the default pool); share = writes/s / raw commits/s "
              "(the higher of the bound measured before and after the engines)")
        print(queue_report.bound_table(bounds, runs, args.processes))
        print()
    for line in queue_report.targets(runs, args):
        print(line)
    print()
    for line in queue_report.details(runs):
        print(line)


def run_parent(args: argparse.Namespace) -> int:
    """Measure every engine on one server, then print the report (or ``--json``)."""
    _logs_to_stderr()
    bench_server = common.BenchServer(args.database_url, args.embedded_dir)
    try:
        runs, bounds = _measure(args, bench_server)
    finally:
        bench_server.close(args.keep_server)
    report = {
        "server": bench_server.where(),
        "embedded": bench_server.embedded,
        "durability": True if bench_server.embedded else None,
        "count": args.count,
        "worker_concurrency": args.worker_concurrency,
        "history": args.history,
        "processes": args.processes,
        "bounds": bounds,
        "shares": {engine: queue_drain.shares(bounds, run) for engine, run in runs.items()},
        "runs": runs,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report, args)
    return 0


# ---------------------------------------------------------------------------------- main


def _int_list(parser: argparse.ArgumentParser, option: str, text: str) -> list[int]:
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        parser.error(f"{option} must be comma-separated integers, got {text!r}")
    if any(v < 1 for v in values):
        parser.error(f"{option} must be positive integers, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--count", type=int, default=2000, help="workflows enqueued and drained per run (default 2000)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed enqueues first, to an unserved queue (default 50)")
    parser.add_argument("--processes", default="1,2,4", help="executor processes per drain run (default 1,2,4)")
    parser.add_argument("--worker-concurrency", type=int, default=32,
                        help="worker_concurrency of the queue in every process (default 32)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds between all workers ready and the release (default 1)")
    parser.add_argument("--latency-count", type=int, default=200, help="timed enqueue->start samples (default 200; 0 skips)")
    parser.add_argument("--latency-warmup", type=int, default=10, help="discarded first samples (default 10)")
    parser.add_argument("--latency-interval-ms", default="50,200",
                        help="ms between enqueues; comma-separated, one run each; the first is checked (default 50,200)")
    parser.add_argument("--idle-queues", default="1,2", help="idle queue counts to measure (default 1,2)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle window measured (default 10)")
    parser.add_argument("--idle-settle", type=float, default=3.0, help="seconds after launch before measuring (default 3)")
    parser.add_argument("--idle-with-peer", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the first --idle-queues count in a 2nd executor beside an uncounted "
                             "peer started first (pgfleet: a follower, not the leader) (default on)")
    parser.add_argument("--history", type=int, default=0,
                        help="finished workflows (of another queue) added to each drain database before the drain, "
                             "to measure on a system database with history (default 0)")
    parser.add_argument("--bound-seconds", type=float, default=3.0,
                        help="seconds of raw INSERTs per connection count for the drain's bound (default 3; 0 skips it)")
    parser.add_argument("--dbos-python", help="python of a virtualenv with dbos installed: also run DBOS")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--keep-server", action="store_true", help="do not stop an embedded server this run started")
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the benchmark databases")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per worker or drain (default 900)")
    parser.add_argument("--worker", choices=("enqueue", "serve", "latency"), help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("pgfleet", "dbos"), help=argparse.SUPPRESS)
    parser.add_argument("--executor-id", default="qbench", help=argparse.SUPPRESS)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line; run a worker role (``--worker``) or the whole benchmark."""
    parser = _parser()
    args = parser.parse_args(argv)

    if args.count < 1 or args.warmup < 0 or args.worker_concurrency < 1 or args.history < 0:
        parser.error("--count and --worker-concurrency must be >= 1, --warmup and --history >= 0")
    try:
        args.latency_interval_ms = [float(s) for s in str(args.latency_interval_ms).split(",") if s.strip()]
    except ValueError:
        parser.error(f"--latency-interval-ms must be comma-separated numbers, got {args.latency_interval_ms!r}")
    if args.latency_count < 0 or args.latency_warmup < 0 or not args.latency_interval_ms \
            or any(i < 0 for i in args.latency_interval_ms):
        parser.error("--latency-count, --latency-warmup and --latency-interval-ms must be >= 0")
    if args.idle_seconds <= 0 or args.idle_settle < 0 or args.settle < 0 or args.bound_seconds < 0:
        parser.error("--idle-seconds must be > 0 and --idle-settle, --settle, --bound-seconds >= 0")

    if args.worker:
        if not args.database_url or not args.engine:
            parser.error("--worker needs --database-url and --engine")
        queue_worker.run_worker(args)
        return 0
    args.processes = _int_list(parser, "--processes", args.processes)
    args.idle_queues = _int_list(parser, "--idle-queues", args.idle_queues)
    if args.dbos_python and not os.path.exists(args.dbos_python):
        parser.error(f"--dbos-python {args.dbos_python!r} does not exist")
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
