"""Async workflow benchmark: pgfleet (and optionally DBOS Transact) beside the raw Postgres bound.

Run it from anywhere with the project's virtual environment::

    .venv/bin/python ops/bench/async_workflows.py                     # pgfleet and the raw bound
    .venv/bin/python ops/bench/async_workflows.py --dbos-python /path/to/venv-with-dbos/bin/python
    .venv/bin/python ops/bench/async_workflows.py --database-url postgresql://u:p@host:5432/postgres --json

What is measured
----------------
1. **Throughput.** An ``async def`` workflow that awaits three ``async def`` steps (each returns
   a small int), awaited directly (``await wf()``, no queue, no ``start_workflow_async``) by
   C concurrent callers: C asyncio tasks on one event loop in one process, each awaiting one
   workflow after the other until ``--count`` workflows are done (after ``--warmup`` untimed
   ones). ``--callers`` (default 1,100) lists the values of C. Reported: workflows/s, and the
   median and p99 wall time of one workflow as its caller saw it.
2. **The raw Postgres bound** of the same run: C asyncio tasks committing single-row INSERTs of
   about a step checkpoint's size (autocommit, one round trip each) through psycopg's
   ``AsyncConnection`` (C = 1) or an ``AsyncConnectionPool`` of ``--pool-size`` connections
   (C > 1: the same size as both engines' system-database pools, 20 by default). A 3-step
   workflow costs pgfleet 5 such commits (its start, three checkpoints, its finish), so
   ``bound wf/s`` = commits/s / 5: what a perfect engine with pgfleet's writes could reach.
   Beside it, the same workflow written sync (``def`` steps), called ``--count`` times in a
   row with no loop: what one caller gets without any hop to a thread, measured in the same
   process right after the async rows.
3. **Many sleepers.** ``--sleepers`` (default 1000) workflows awaited at once with
   ``asyncio.gather``, each awaiting a step, ``await DBOS.sleep_async(--sleep-seconds)`` (1 s)
   and another step. Reported: the wall time of the whole gather, and the peak thread count of
   the process and peak connections to the benchmark database (``pg_stat_activity``), both
   sampled every 20 ms by a sampler thread (its own thread and connection are left out), with
   the same two counts just before the gather (idle).

How it runs
-----------
As ``workflows.py``: the parent manages databases and prints; each engine (``pgfleet`` with
this interpreter, ``dbos`` with ``--dbos-python``, ``raw`` with this interpreter) runs in its
own child process, one after the other, against a fresh database ``bench_async_<engine>_<stamp>``
(dropped after unless ``--keep-databases``). Without ``--database-url`` the embedded server
under ``--embedded-dir`` is started or joined with durability on. The raw bound's SQL lives in
this file: it is a measurement, not pgfleet code.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # ops/bench/queue.py would shadow the standard library's ``queue`` for a script run from
    # this directory: take the directory off sys.path (see workflows.py).
    _HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import importlib.util
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

if __package__:
    from . import common
else:  # a script (the DBOS worker too): load the sibling module by path
    _spec = importlib.util.spec_from_file_location("pgfleet_bench_common", Path(__file__).resolve().parent / "common.py")
    assert _spec is not None and _spec.loader is not None
    common = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = common
    _spec.loader.exec_module(common)

REPO_ROOT = common.REPO_ROOT
STEPS = 3
# Commits of one 3-step workflow in pgfleet: the start's insert, one per step, the finish.
COMMITS_PER_WORKFLOW = STEPS + 2
SAMPLE_INTERVAL_SEC = 0.02

# The raw bound's table and row: about the size of a step checkpoint (ids, name, output).
RAW_TABLE = """CREATE TABLE bench_raw (
    workflow_uuid TEXT NOT NULL, function_id INT NOT NULL, function_name TEXT NOT NULL,
    output TEXT, started_at_epoch_ms BIGINT, completed_at_epoch_ms BIGINT,
    PRIMARY KEY (workflow_uuid, function_id))"""
RAW_INSERT = """INSERT INTO bench_raw (workflow_uuid, function_id, function_name, output,
    started_at_epoch_ms, completed_at_epoch_ms) VALUES (%s, %s, %s, %s, %s, %s)"""


# ---------------------------------------------------------------------------------- sampling


class PeakSampler:
    """A thread that samples this process's thread count and the connections to its database
    every 20 ms, keeping the peaks; its own thread and connection are not counted."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak_threads = 0
        self.peak_connections = 0

    def sample(self) -> tuple[int, int]:
        with open("/proc/self/status") as status:
            threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
        row = self._conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        own_thread = 1 if self._thread is not None else 0
        return threads - own_thread, int(row[0]) if row else 0

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_SEC):
            threads, connections = self.sample()
            self.peak_threads = max(self.peak_threads, threads)
            self.peak_connections = max(self.peak_connections, connections)

    def __enter__(self) -> PeakSampler:
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._conn.close()


# ---------------------------------------------------------------------------------- worker


async def _callers(call: Any, count: int, concurrency: int) -> dict[str, Any]:
    """Await ``call()`` ``count`` times from ``concurrency`` tasks; throughput and latencies."""
    remaining = count
    latencies: list[float] = []
    perf = time.perf_counter

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t = perf()
            await call()
            latencies.append(perf() - t)

    start = perf()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = perf() - start
    latencies.sort()
    return {
        "callers": concurrency,
        "count": count,
        "elapsed_s": elapsed,
        "per_s": count / elapsed,
        "ms_median": 1000.0 * common.percentile(latencies, 0.5),
        "ms_p99": 1000.0 * common.percentile(latencies, 0.99),
    }


def _import_engine(engine: str, url: str) -> tuple[Any, str, bool]:
    """DBOS of ``engine`` (the repository's only for pgfleet), its version, and whether DBOS's
    migrations had to skip uuid-ossp."""
    if engine == "pgfleet":
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from runtime import DBOS  # type: ignore[import-not-found]

        return DBOS, "pgfleet", False
    from dbos import DBOS  # type: ignore[import-not-found,no-redef]

    patched = common.dbos_tolerate_missing_uuid_ossp(url)
    return DBOS, common.dbos_version(), patched


def run_engine_worker(engine: str, url: str, args: argparse.Namespace) -> None:
    """Run the async workloads with one engine in this process and print one result line."""
    DBOS, version, patched = _import_engine(engine, url)

    @DBOS.step()
    async def bench_step(i: int) -> int:
        return i + 1

    @DBOS.workflow(name="bench_async_3_steps")
    async def three_steps() -> int:
        total = 0
        for i in range(STEPS):
            total += await bench_step(i)
        return total

    @DBOS.step()
    def sync_step(i: int) -> int:
        return i + 1

    @DBOS.workflow(name="bench_sync_3_steps")
    def sync_three_steps() -> int:
        return sum(sync_step(i) for i in range(STEPS))

    @DBOS.workflow(name="bench_async_sleeper")
    async def sleeper(i: int) -> int:
        first = await bench_step(i)
        await DBOS.sleep_async(args.sleep_seconds)
        return await bench_step(first)

    config: dict[str, Any] = {"name": "bench_async", "system_database_url": url, "log_level": "WARNING",
                              "run_admin_server": False, "sys_db_pool_size": args.pool_size}
    t0 = time.perf_counter()
    DBOS(config=config)
    DBOS.launch()
    launch_s = time.perf_counter() - t0

    expected = sum(i + 1 for i in range(STEPS))

    async def one() -> None:
        if await three_steps() != expected:
            raise AssertionError(f"{engine}: the 3-step workflow returned a wrong result")

    async def workloads() -> dict[str, Any]:
        out: dict[str, Any] = {"throughput": []}
        await _callers(one, args.warmup, 1)
        for concurrency in args.callers:
            out["throughput"].append(await _callers(one, args.count, concurrency))
        if args.sleepers:
            out["sleepers"] = await _sleepers(sleeper, url, args.sleepers)
        return out

    try:
        results = asyncio.run(workloads())
        results["sync"] = _sync_baseline(sync_three_steps, expected, args)
    finally:
        DBOS.destroy()
    common.emit_result({"engine": engine, "version": version, "python": sys.version.split()[0], "launch_s": launch_s,
                        "dbos_migration_without_uuid_ossp": patched, **results})


def _sync_baseline(workflow: Any, expected: int, args: argparse.Namespace) -> dict[str, Any]:
    """The same 3-step workflow written sync, called ``--count`` times in a row: what one caller
    gets with no loop and no hop to a thread (the floor an async route could approach)."""
    for _ in range(args.warmup):
        workflow()
    latencies: list[float] = []
    perf = time.perf_counter
    start = perf()
    for _ in range(args.count):
        t = perf()
        if workflow() != expected:
            raise AssertionError("the sync 3-step workflow returned a wrong result")
        latencies.append(perf() - t)
    elapsed = perf() - start
    latencies.sort()
    return {"per_s": args.count / elapsed, "ms_median": 1000.0 * common.percentile(latencies, 0.5)}


async def _sleepers(sleeper: Any, url: str, n: int) -> dict[str, Any]:
    """``n`` sleeper workflows awaited at once: wall time, idle and peak threads and connections."""
    with PeakSampler(url) as sampler:
        idle_threads, idle_connections = sampler.sample()
        start = time.perf_counter()
        results = await asyncio.gather(*(sleeper(i) for i in range(n)))
        wall = time.perf_counter() - start
    if results != [i + 2 for i in range(n)]:
        raise AssertionError("a sleeper workflow returned a wrong result")
    return {"workflows": n, "wall_s": wall, "idle_threads": idle_threads, "idle_connections": idle_connections,
            "peak_threads": max(sampler.peak_threads, idle_threads),
            "peak_connections": max(sampler.peak_connections, idle_connections)}


def run_raw_worker(url: str, args: argparse.Namespace) -> None:
    """The raw bound: single-row autocommit INSERTs from C tasks through psycopg's async API."""
    import psycopg
    from psycopg_pool import AsyncConnectionPool

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(RAW_TABLE)
    serial = iter(range(10**12))
    output = json.dumps({"value": 12345, "note": "about a step checkpoint's size"})

    async def measure(concurrency: int, count: int) -> dict[str, Any]:
        def params() -> tuple[Any, ...]:
            now = int(time.time() * 1000)
            return (f"raw-{next(serial):012d}", 1, "bench_step", output, now, now)

        if concurrency == 1:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:

                async def insert_one() -> None:
                    await conn.execute(RAW_INSERT, params())

                return await _callers(insert_one, count, 1)
        async with AsyncConnectionPool(url, min_size=args.pool_size, max_size=args.pool_size,
                                       kwargs={"autocommit": True}, open=False) as pool:
            await pool.wait()

            async def insert_pooled() -> None:
                async with pool.connection() as conn:
                    await conn.execute(RAW_INSERT, params())

            return await _callers(insert_pooled, count, concurrency)

    async def all_levels() -> list[dict[str, Any]]:
        await measure(1, args.warmup)
        # As many commits as the engines' timed workflows make.
        return [await measure(c, args.count * COMMITS_PER_WORKFLOW) for c in args.callers]

    common.emit_result({"engine": "raw", "version": f"psycopg {psycopg.__version__}", "python": sys.version.split()[0],
                        "throughput": asyncio.run(all_levels())})


# ---------------------------------------------------------------------------------- parent


def _run_engine(engine: str, python: str, server_url: str, dbname: str, args: argparse.Namespace) -> dict[str, Any]:
    url = common.with_database(server_url, dbname)
    common.admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}"')
    common.admin(server_url, f'CREATE DATABASE "{dbname}"')
    cmd = [python, str(Path(__file__).resolve()), "--worker", engine, "--database-url", url,
           "--count", str(args.count), "--warmup", str(args.warmup), "--callers", ",".join(map(str, args.callers)),
           "--sleepers", str(args.sleepers), "--sleep-seconds", str(args.sleep_seconds), "--pool-size", str(args.pool_size)]
    print(f"[bench] running {engine} ...", file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=common.worker_env(), cwd=str(REPO_ROOT),
                              timeout=args.timeout)
    finally:
        if not args.keep_databases:
            try:
                common.admin(server_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            except Exception as exc:  # pragma: no cover - report, do not mask the run's result
                print(f"[bench] could not drop {dbname}: {exc}", file=sys.stderr)
    result = common.parse_result(proc.stdout)
    if proc.returncode != 0 or result is None:
        sys.stderr.write(proc.stdout[-4000:])
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"[bench] {engine} worker failed (exit code {proc.returncode}): {' '.join(cmd)}")
    return result


def _throughput_table(runs: dict[str, dict[str, Any]]) -> str:
    fmt = common.fmt
    engines = [e for e in ("pgfleet", "dbos") if e in runs]
    header = ["callers"]
    for e in engines:
        header += [f"{e} wf/s", f"{e} p50 ms", f"{e} p99 ms"]
    if "dbos" in runs:
        header.append("ratio")
    header += ["raw commits/s", "bound wf/s", "pgfleet/bound"]
    rows = [header]
    for n, pg in enumerate(runs["pgfleet"]["throughput"]):
        row = [str(pg["callers"])]
        for e in engines:
            r = runs[e]["throughput"][n]
            row += [fmt(r["per_s"], ".1f"), fmt(r["ms_median"], ".2f"), fmt(r["ms_p99"], ".2f")]
        if "dbos" in runs:
            row.append(fmt(pg["per_s"] / runs["dbos"]["throughput"][n]["per_s"], ".2f") + "x")
        raw = runs["raw"]["throughput"][n]["per_s"]
        bound = raw / COMMITS_PER_WORKFLOW
        row += [fmt(raw, ".0f"), fmt(bound, ".1f"), fmt(100.0 * pg["per_s"] / bound, ".0f") + " %"]
        rows.append(row)
    return common.render_table(rows)


def _sleepers_table(runs: dict[str, dict[str, Any]]) -> str:
    rows = [["engine", "workflows", "wall s", "threads idle", "threads peak", "connections idle", "connections peak"]]
    for engine in ("pgfleet", "dbos"):
        s = runs.get(engine, {}).get("sleepers")
        if s:
            rows.append([engine, str(s["workflows"]), f"{s['wall_s']:.2f}", str(s["idle_threads"]), str(s["peak_threads"]),
                         str(s["idle_connections"]), str(s["peak_connections"])])
    return common.render_table(rows)


def run_parent(args: argparse.Namespace) -> int:
    bench_server = common.BenchServer(args.database_url, args.embedded_dir)
    stamp = time.strftime("%Y%m%d_%H%M%S") + f"_{os.getpid()}"
    runs: dict[str, dict[str, Any]] = {}
    try:
        runs["pgfleet"] = _run_engine("pgfleet", sys.executable, bench_server.url, f"bench_async_pgfleet_{stamp}", args)
        if args.dbos_python:
            runs["dbos"] = _run_engine("dbos", args.dbos_python, bench_server.url, f"bench_async_dbos_{stamp}", args)
        runs["raw"] = _run_engine("raw", sys.executable, bench_server.url, f"bench_async_raw_{stamp}", args)
    finally:
        bench_server.close(args.keep_server)
    if args.json:
        print(json.dumps({"server": bench_server.where(), "embedded": bench_server.embedded, "count": args.count,
                          "pool_size": args.pool_size, "runs": runs}, indent=2))
        return 0
    print(f"server {bench_server.where()} ({'embedded, durability on' if bench_server.embedded else 'external server'})  "
          f"count {args.count} per row  warmup {args.warmup}  pool size {args.pool_size}")
    for engine, run in runs.items():
        print(f"{engine}: {run['version']} on python {run['python']}"
              + (f", launch {run['launch_s']:.2f} s" if "launch_s" in run else "")
              + ("  [schema migrated without uuid-ossp]" if run.get("dbos_migration_without_uuid_ossp") else ""))
    print()
    print(f"async {STEPS}-step workflows, awaited by C concurrent tasks on one loop "
          f"(bound wf/s = raw commits/s / {COMMITS_PER_WORKFLOW}):")
    print(_throughput_table(runs))
    for engine in ("pgfleet", "dbos"):
        if engine in runs:
            sync, one = runs[engine]["sync"], runs[engine]["throughput"][0]
            print(f"{engine}: the same workflow written sync, 1 caller in a row: {sync['per_s']:.1f} wf/s, "
                  f"p50 {sync['ms_median']:.2f} ms (async, {one['callers']} caller(s): {one['per_s']:.1f} wf/s, "
                  f"p50 {one['ms_median']:.2f} ms)")
    if args.sleepers:
        print()
        print(f"{args.sleepers} workflows awaited at once, each: step, sleep_async({args.sleep_seconds:g}), step:")
        print(_sleepers_table(runs))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--count", type=int, default=400, help="timed workflows per callers value (default 400)")
    parser.add_argument("--warmup", type=int, default=40, help="untimed workflows first (default 40)")
    parser.add_argument("--callers", default="1,100", help="comma-separated concurrent callers (default 1,100)")
    parser.add_argument("--sleepers", type=int, default=1000, help="sleeping workflows awaited at once (default 1000; 0: skip)")
    parser.add_argument("--sleep-seconds", type=float, default=1.0, help="each sleeper's DBOS.sleep_async (default 1)")
    parser.add_argument("--pool-size", type=int, default=20, help="system-database pool size, both engines and raw (default 20)")
    parser.add_argument("--dbos-python", help="python of a virtualenv with dbos installed: also run DBOS")
    parser.add_argument("--json", action="store_true", help="print the full results as JSON")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--keep-server", action="store_true", help="do not stop an embedded server this run started")
    parser.add_argument("--keep-databases", action="store_true", help="do not drop the benchmark databases")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per worker (default 900)")
    parser.add_argument("--worker", choices=("pgfleet", "dbos", "raw"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.callers = [int(c) for c in args.callers.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--callers must be comma-separated integers, got {args.callers!r}")
    if not args.callers or min(args.callers) < 1 or args.count < 1 or args.warmup < 0 or args.sleepers < 0 or args.pool_size < 1:
        parser.error("--callers and --count must be >= 1, --warmup and --sleepers >= 0, --pool-size >= 1")
    if args.worker:
        if not args.database_url:
            parser.error("--worker needs --database-url")
        if args.worker == "raw":
            run_raw_worker(args.database_url, args)
        else:
            run_engine_worker(args.worker, args.database_url, args)
        return 0
    if args.dbos_python and not os.path.exists(args.dbos_python):
        parser.error(f"--dbos-python {args.dbos_python!r} does not exist")
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
