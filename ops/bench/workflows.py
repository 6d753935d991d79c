"""Workflow throughput benchmark: pgfleet (and optionally DBOS Transact) on the same Postgres.

Run it from anywhere with the project's virtual environment::

    /work/venv/bin/python ops/bench/workflows.py                      # pgfleet alone
    /work/venv/bin/python ops/bench/workflows.py --dbos-python /path/to/venv/bin/python
    /work/venv/bin/python ops/bench/workflows.py --database-url postgresql://u:p@host:5432/postgres
    /work/venv/bin/python ops/bench/workflows.py --embedded-dir /tmp/pgfleet-bench --count 1000 --json

What is measured
----------------
Three workflows that call 0, 3 and 10 trivial steps one after the other (each step returns a
small int). For each, ``--warmup`` calls are made and discarded, then ``--count`` calls are
made **sequentially and directly** (``wf()`` in the caller's thread, no queue, no
``start_workflow``) and timed with ``time.perf_counter``. Reported per engine and step count:

* ``wf/s``      -- completed workflows per second (count / elapsed);
* ``ms/wf``     -- mean (and median, p99) wall time of one workflow;
* ``ms/step``   -- (mean ms/wf with k steps - mean ms/wf with 0 steps) / k, i.e. the marginal
  cost of one checkpointed step once the workflow's own start/finish writes are paid for.

Why sequential direct calls: that is the latency a single caller sees, and it isolates the
per-operation cost. In pgfleet every step is one fenced round trip (the step's output is
written with the workflow's ownership token and committed) and the workflow adds its start and
completion writes, so ms/step is essentially "one durable commit + client overhead". Nothing
is batched or overlapped, so the numbers are a floor for latency, not a ceiling for throughput
(concurrent callers would overlap commits via group commit).

With ``--dbos-python PATH`` (the python of a virtual environment where ``dbos`` is installed)
the identical workload runs under DBOS Transact against the same server, and the two are
printed side by side; ``ratio`` is pgfleet wf/s divided by DBOS wf/s.

How it runs
-----------
The parent process only manages databases and prints results. Each engine runs in its own
child process (``--worker pgfleet`` with this interpreter, ``--worker dbos`` with the DBOS
python), one after the other so they never compete for the CPUs, each against a fresh database
``bench_<engine>_<timestamp>`` created before and dropped after (``--keep-databases`` keeps
them). A worker prints one line ``PGFLEET_BENCH_RESULT <json>`` on stdout.

Without ``--database-url`` the embedded Postgres under ``--embedded-dir`` (default
``./.pgfleet``, pgfleet's own default) is started or joined, with durability on (fsync and
synchronous_commit on: real commits are measured). If this run had to start it, it is stopped
again at the end (unless ``--keep-server``); a server that was already running is left alone.
With ``--database-url`` the URL names a server and a database to connect to for CREATE/DROP
DATABASE; the benchmark databases are created on that same server.

Targets (from the issue): >= 5x DBOS wf/s on 3-step workflows, <= 0.5 ms per step on the
2-core dev machine. ``--profile DIR`` writes a cProfile of each worker's timed loops to
``DIR/<engine>.prof`` (profiling slows everything down: do not compare those timings).
``--attempt-ledger`` runs pgfleet with the attempt ledger on (one more insert per step body:
compare with a run without it for the ledger's cost). ``--threads 1,8,32`` runs N threads per
engine against Postgres's raw N-connection commit bound instead (issue #14; see ``bound.py``).
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # ops/bench/queue.py would shadow the standard library's ``queue`` (imported by threading,
    # psycopg ...) for a script run from this directory: take the directory off sys.path.
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import importlib.util
import json
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

if __package__:
    from . import bound, common
else:  # a script (the DBOS worker too): common by path, then its siblings through it, in dependency order
    _spec = importlib.util.spec_from_file_location("pgfleet_bench_common", Path(__file__).resolve().parent / "common.py")
    assert _spec is not None and _spec.loader is not None
    common = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = common
    _spec.loader.exec_module(common)
    for _sibling in ("sql_alone", "paired"):
        common.load_sibling(_sibling)
    bound = common.load_sibling("bound")

RESULT_PREFIX = common.RESULT_PREFIX
REPO_ROOT = common.REPO_ROOT
DEFAULT_STEPS = (0, 3, 10)
TARGET_RATIO_STEPS = 3
TARGET_RATIO = 5.0
TARGET_MS_PER_STEP = 0.5


# ---------------------------------------------------------------------------------- worker


_percentile = common.percentile
_UUID_OSSP = common.UUID_OSSP
_dbos_tolerate_missing_uuid_ossp = common.dbos_tolerate_missing_uuid_ossp


def setup_engine(engine: str, url: str, step_counts: list[int], attempt_ledger: bool = False,
                 pool_size: int | None = None) -> tuple[Any, dict[int, Any], dict[str, Any]]:
    """Import and launch one engine with a k-step workflow per step count: (DBOS, workflows, info)."""
    if engine == "pgfleet":
        # Only the pgfleet worker sees the repository: the DBOS worker must import the real dbos.
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from runtime import DBOS  # type: ignore[import-not-found]

        version, migration_patched = "pgfleet", False
    elif engine == "dbos":
        from dbos import DBOS  # type: ignore[import-not-found,no-redef]

        migration_patched = _dbos_tolerate_missing_uuid_ossp(url)
        version = common.dbos_version()
    else:
        raise SystemExit(f"unknown engine {engine!r}")

    @DBOS.step()
    def bench_step(i: int) -> int:
        return i + 1

    def make_workflow(k: int) -> Any:
        def body() -> int:
            total = 0
            for i in range(k):
                total += bench_step(i)
            return total

        body.__name__ = body.__qualname__ = f"bench_workflow_{k}_steps"
        return DBOS.workflow(name=body.__name__)(body)

    workflows = {k: make_workflow(k) for k in step_counts}
    config: dict[str, Any] = {"name": "bench", "system_database_url": url, "log_level": "WARNING", "run_admin_server": False}
    if pool_size is not None:
        config["sys_db_pool_size"] = pool_size  # --threads: one connection per thread, plus the engine's own
    if attempt_ledger and engine == "pgfleet":
        config["attempt_ledger"] = True  # one extra insert before every step body (issue #12)
    t0 = time.perf_counter()
    try:
        DBOS(config=config)  # type: ignore[arg-type]
    except Exception as exc:  # an engine that rejects run_admin_server: retry without it
        if "run_admin_server" not in str(exc):
            raise
        config.pop("run_admin_server")
        DBOS(config=config)  # type: ignore[arg-type]
    DBOS.launch()
    info = {"engine": engine, "version": version, "python": sys.version.split()[0],
            "launch_s": time.perf_counter() - t0, "dbos_migration_without_uuid_ossp": migration_patched}
    return DBOS, workflows, info


def run_worker(
    engine: str, url: str, count: int, warmup: int, step_counts: list[int], profile: str | None, attempt_ledger: bool = False
) -> None:
    """Run the workload with one engine in this process and print one result line."""
    DBOS, workflows, info = setup_engine(engine, url, step_counts, attempt_ledger)
    import cProfile

    profiler = cProfile.Profile() if profile else None
    results: dict[str, Any] = {}
    try:
        for k in step_counts:
            wf = workflows[k]
            expected = sum(i + 1 for i in range(k))
            for _ in range(warmup):
                if wf() != expected:
                    raise AssertionError(f"{engine}: {k}-step workflow returned a wrong result")
            latencies: list[float] = []
            perf = time.perf_counter
            if profiler is not None:
                profiler.enable()
            start = perf()
            for _ in range(count):
                t = perf()
                wf()
                latencies.append(perf() - t)
            elapsed = perf() - start
            if profiler is not None:
                profiler.disable()
            latencies.sort()
            results[str(k)] = {
                "steps": k,
                "count": count,
                "elapsed_s": elapsed,
                "wf_per_s": count / elapsed,
                "ms_per_wf_mean": 1000.0 * elapsed / count,
                "ms_per_wf_median": 1000.0 * statistics.median(latencies),
                "ms_per_wf_p99": 1000.0 * _percentile(latencies, 0.99),
            }
    finally:
        DBOS.destroy()

    base = results.get("0")
    for entry in results.values():
        k = entry["steps"]
        entry["ms_per_step"] = (
            (entry["ms_per_wf_mean"] - base["ms_per_wf_mean"]) / k if base is not None and k > 0 else None
        )

    if profiler is not None:
        Path(profile).mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        profiler.dump_stats(str(Path(profile) / f"{engine}.prof"))  # type: ignore[arg-type]

    payload = {
        **info,
        "profiled": profiler is not None,
        "attempt_ledger": attempt_ledger and engine == "pgfleet",
        "results": results,
    }
    common.emit_result(payload)


# ---------------------------------------------------------------------------------- parent


_with_database = common.with_database
_admin = common.admin


def _run_engine(
    engine: str, python: str, server_url: str, dbname: str, args: argparse.Namespace, step_counts: list[int]
) -> dict[str, Any]:
    url = _with_database(server_url, dbname)
    _admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}"')
    _admin(server_url, f'CREATE DATABASE "{dbname}"')
    cmd = [
        python,
        str(Path(__file__).resolve()),
        "--worker",
        engine,
        "--database-url",
        url,
        "--count",
        str(args.count),
        "--warmup",
        str(args.warmup),
        "--steps",
        ",".join(str(k) for k in step_counts),
    ]
    if args.profile:
        cmd += ["--profile", str(Path(args.profile).resolve())]
    if args.attempt_ledger:
        cmd += ["--attempt-ledger"]
    if args.threads:
        cmd += ["--threads", args.threads, "--rounds", str(args.rounds), "--bound-seconds", str(args.bound_seconds)]
        if args.rounds:  # the scratch databases of the raw bound and (pgfleet's) SQL alone, made by the parent
            cmd += ["--raw-url", args.raw_url] + (["--sql-url", args.sql_url] if engine == "pgfleet" else [])
    env = common.worker_env()  # the worker must use exactly the URL it is given
    print(f"[bench] running {engine} ({args.count} x {step_counts} steps) ...", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(REPO_ROOT), timeout=args.timeout)
    finally:
        if not args.keep_databases:
            try:
                _admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            except Exception as exc:  # pragma: no cover - report, do not mask the run's result
                print(f"[bench] could not drop {dbname}: {exc}", file=sys.stderr)
    result = common.parse_result(proc.stdout)
    if proc.returncode != 0 or result is None:
        sys.stderr.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"[bench] {engine} worker failed (exit code {proc.returncode}): {' '.join(cmd)}")
    result["database"] = dbname
    return result


_fmt = common.fmt


def _table(runs: dict[str, dict[str, Any]], step_counts: list[int]) -> str:
    pg = runs["pgfleet"]["results"]
    db = runs.get("dbos", {}).get("results")
    header = ["steps", "pgfleet wf/s", "pgfleet ms/wf", "pgfleet ms/step"]
    if db is not None:
        header += ["dbos wf/s", "dbos ms/wf", "dbos ms/step", "ratio"]
    rows = [header]
    for k in step_counts:
        p = pg[str(k)]
        row = [str(k), _fmt(p["wf_per_s"], ".1f"), _fmt(p["ms_per_wf_mean"], ".3f"), _fmt(p["ms_per_step"], ".3f")]
        if db is not None:
            d = db[str(k)]
            row += [
                _fmt(d["wf_per_s"], ".1f"),
                _fmt(d["ms_per_wf_mean"], ".3f"),
                _fmt(d["ms_per_step"], ".3f"),
                _fmt(p["wf_per_s"] / d["wf_per_s"], ".2f") + "x",
            ]
        rows.append(row)
    return common.render_table(rows)


def _targets(runs: dict[str, dict[str, Any]], step_counts: list[int]) -> list[str]:
    lines = []
    pg = runs["pgfleet"]["results"]
    per_step = [pg[str(k)]["ms_per_step"] for k in step_counts if k > 0 and pg[str(k)]["ms_per_step"] is not None]
    if per_step:
        worst = max(per_step)
        verdict = "ok" if worst <= TARGET_MS_PER_STEP else "MISSED"
        lines.append(f"target ms/step <= {TARGET_MS_PER_STEP}: worst {worst:.3f} ms -> {verdict}")
    if "dbos" in runs and str(TARGET_RATIO_STEPS) in pg:
        ratio = pg[str(TARGET_RATIO_STEPS)]["wf_per_s"] / runs["dbos"]["results"][str(TARGET_RATIO_STEPS)]["wf_per_s"]
        verdict = "ok" if ratio >= TARGET_RATIO else "MISSED"
        lines.append(f"target >= {TARGET_RATIO:g}x DBOS at {TARGET_RATIO_STEPS} steps: {ratio:.2f}x -> {verdict}")
    return lines


def run_parent(args: argparse.Namespace, step_counts: list[int]) -> int:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))

    bench_server = common.BenchServer(args.database_url, args.embedded_dir)
    server = bench_server.server
    server_url = bench_server.url

    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{os.getpid()}"
    runs: dict[str, dict[str, Any]] = {}
    try:
        runs["pgfleet"] = _run_engine("pgfleet", sys.executable, server_url, f"bench_pgfleet_{stamp}", args, step_counts)
        if args.dbos_python:
            runs["dbos"] = _run_engine("dbos", args.dbos_python, server_url, f"bench_dbos_{stamp}", args, step_counts)
    finally:
        bench_server.close(args.keep_server)

    from urllib.parse import urlsplit

    where = urlsplit(server_url)
    report = {
        "server": f"{where.hostname}:{where.port}",
        "embedded": server is not None,
        "durability": True if server is not None else None,
        "count": args.count,
        "warmup": args.warmup,
        "runs": runs,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"server {report['server']}  count {args.count}  warmup {args.warmup}  "
          f"({'embedded, durability on' if server is not None else 'external server'})")
    for engine, run in runs.items():
        print(f"{engine}: {run['version']} on python {run['python']}, launch {run['launch_s']:.2f} s"
              + ("  [PROFILED: timings inflated]" if run["profiled"] else "")
              + ("  [schema migrated without uuid-ossp]" if run.get("dbos_migration_without_uuid_ossp") else ""))
    print()
    print(_table(runs, step_counts))
    print()
    for line in _targets(runs, step_counts):
        print(line)
    return 0


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--count", type=int, default=500, help="timed workflows per step count (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed workflows first (default 50)")
    parser.add_argument("--steps", default=",".join(str(k) for k in DEFAULT_STEPS),
                        help="comma-separated step counts; 0 must be included for ms/step (default 0,3,10)")
    parser.add_argument("--dbos-python", help="python of a virtualenv with dbos installed: also run DBOS")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--keep-server", action="store_true", help="do not stop an embedded server this run started")
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the benchmark databases")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each worker's timed loops to DIR")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per worker (default 1800)")
    parser.add_argument("--attempt-ledger", action="store_true",
                        help="run pgfleet with attempt_ledger on (every step body's start recorded; issue #12)")
    parser.add_argument("--threads", metavar="N[,N...]", help="N threads per process against the raw N-connection bound (bound.py)")
    parser.add_argument("--bound-seconds", type=float, default=3.0, help="seconds of raw INSERTs per N (default 3)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="with --threads: also measure each row as R rounds of bound, SQL alone and engine "
                             "(paired.py; --bound-seconds and --count are split over them; 0: off; default 5)")
    parser.add_argument("--raw-url", help=argparse.SUPPRESS)
    parser.add_argument("--sql-url", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=("pgfleet", "dbos"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    try:
        step_counts = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--steps must be comma-separated integers, got {args.steps!r}")
    if any(k < 0 for k in step_counts) or not step_counts:
        parser.error("--steps must be non-negative integers")
    if args.count < 1 or args.warmup < 0:
        parser.error("--count must be >= 1 and --warmup >= 0")
    if args.rounds < 0 or args.rounds > args.count:
        parser.error("--rounds must be between 0 and --count")
    thread_counts = bound.parse_threads(parser, args.threads, args.profile)

    if args.worker:
        if not args.database_url:
            parser.error("--worker needs --database-url")
        if thread_counts:
            paired = None if not (args.rounds and args.raw_url) else {
                "rounds": args.rounds, "seconds": args.bound_seconds, "raw_url": args.raw_url, "sql_url": args.sql_url}
            bound.run_threads_worker(setup_engine, common.emit_result, args.worker, args.database_url,
                                     args.count, args.warmup, step_counts, thread_counts, paired)
            return 0
        run_worker(args.worker, args.database_url, args.count, args.warmup, step_counts, args.profile, args.attempt_ledger)
        return 0
    if args.dbos_python and not os.path.exists(args.dbos_python):
        parser.error(f"--dbos-python {args.dbos_python!r} does not exist")
    if thread_counts:
        return int(bound.run_parent(args, step_counts, thread_counts, _run_engine))
    return run_parent(args, step_counts)


if __name__ == "__main__":
    sys.exit(main())
