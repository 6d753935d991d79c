"""The worker side of ``queue.py``: one role of one engine in this process, one result line.

Runs under pgfleet's interpreter or the DBOS virtual environment's, so at module level it
imports only the standard library and ``common`` (loaded by ``queue.py``). Roles:

* ``serve`` -- launch serving ``--serve`` queues, print ``READY_PREFIX <json>``, serve until
  ``STOP`` (or EOF) on stdin, report the CPU seconds spent serving;
* ``enqueue`` -- ``--warmup`` untimed enqueues to a queue nobody serves, then ``--count``
  timed ones to ``qbench``, one after the other from this thread, serving no queue;
* ``latency`` -- serving no queue, one enqueue every ``--latency-interval-ms`` on a fixed
  schedule with ``time.time()`` as the argument; the workflow returns its entry time minus it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

if __package__:
    from . import common
else:  # loaded by path by queue.py, which has loaded common.py the same way first
    common = sys.modules["pgfleet_bench_common"]

READY_PREFIX = "PGFLEET_BENCH_READY "
REPO_ROOT = common.REPO_ROOT

QUEUE_NAME = "qbench"
WARMUP_QUEUE_NAME = "qbench_warmup"  # declared by enqueuers only, served by nobody
IDLE_QUEUE_PREFIX = "qbench_idle_"
WORKFLOW_NAME = "qbench_one_step"
APP_NAME = "qbench"
APP_VERSION = "qbench-1"


def _load_engine(engine: str, url: str) -> tuple[Any, Any, str, bool]:
    """(DBOS, Queue, version label, migrations patched) of the engine, in this process."""
    if engine == "pgfleet":
        # Only the pgfleet worker sees the repository: the DBOS worker must import the real dbos.
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from runtime import DBOS, Queue  # type: ignore[import-not-found]

        return DBOS, Queue, "pgfleet", False
    if engine == "dbos":
        from dbos import DBOS, Queue  # type: ignore[import-not-found,no-redef]

        patched = common.dbos_tolerate_missing_uuid_ossp(url)
        return DBOS, Queue, common.dbos_version(), patched
    raise SystemExit(f"unknown engine {engine!r}")


def _launch(DBOS: Any, engine: str, url: str, executor_id: str, served: list[str]) -> float:
    """Configure and launch DBOS serving exactly ``served`` (plus the engine's internal queue)."""
    config: dict[str, Any] = {
        "name": APP_NAME,
        "system_database_url": url,
        "log_level": "WARNING",
        "run_admin_server": False,
        "executor_id": executor_id,
        "application_version": APP_VERSION,
    }
    if engine == "pgfleet":
        config["queues"] = list(served)
    t0 = time.perf_counter()
    try:
        DBOS(config=config)
    except Exception as exc:  # an engine that rejects run_admin_server: retry without it
        if "run_admin_server" not in str(exc):
            raise
        config.pop("run_admin_server")
        DBOS(config=config)
    if engine == "dbos":
        DBOS.listen_queues(list(served))
    DBOS.launch()
    return time.perf_counter() - t0


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _serve(DBOS: Any, args: argparse.Namespace, served: list[str], payload: dict[str, Any]) -> None:
    payload["launch_s"] = _launch(DBOS, args.engine, args.database_url, args.executor_id, served)
    cpu0, wall0 = _cpu_seconds(), time.perf_counter()
    sys.stdout.write(READY_PREFIX + json.dumps({"pid": os.getpid(), "launch_s": payload["launch_s"]}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:  # until STOP or EOF
        if line.strip() == "STOP":
            break
    payload["serve_cpu_s"] = _cpu_seconds() - cpu0
    payload["serve_wall_s"] = time.perf_counter() - wall0
    DBOS.destroy()


def _enqueue(DBOS: Any, args: argparse.Namespace, queues: tuple[Any, Any], wf: Any, payload: dict[str, Any]) -> None:
    bench_queue, warmup_queue = queues
    payload["launch_s"] = _launch(DBOS, args.engine, args.database_url, args.executor_id, [])
    try:
        for _ in range(args.warmup):
            warmup_queue.enqueue(wf, 0.0)
        perf = time.perf_counter
        calls: list[float] = []
        cpu0 = _cpu_seconds()
        start = perf()
        for _ in range(args.count):
            t = perf()
            bench_queue.enqueue(wf, 0.0)
            calls.append(perf() - t)
        elapsed = perf() - start
        cpu = _cpu_seconds() - cpu0
    finally:
        DBOS.destroy()
    calls.sort()
    payload.update({
        "count": args.count,
        "elapsed_s": elapsed,
        "enqueue_per_s": args.count / elapsed,
        "ms_p50": 1000.0 * statistics.median(calls),
        "ms_p99": 1000.0 * common.percentile(calls, 0.99),
        "cpu_ms_per_enqueue": 1000.0 * cpu / args.count,
    })


def _latency(DBOS: Any, args: argparse.Namespace, bench_queue: Any, wf: Any, payload: dict[str, Any]) -> None:
    payload["launch_s"] = _launch(DBOS, args.engine, args.database_url, args.executor_id, [])
    interval = args.latency_interval_ms[0] / 1000.0
    total = args.latency_warmup + args.latency_count
    handles = []
    try:
        begin = time.perf_counter()
        for i in range(total):
            delay = begin + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            handles.append(bench_queue.enqueue(wf, time.time()))
        values = [float(h.get_result()) for h in handles]
    finally:
        DBOS.destroy()
    measured = sorted(1000.0 * v for v in values[args.latency_warmup:])
    payload.update({
        "count": len(measured),
        "interval_ms": args.latency_interval_ms[0],
        "ms_p50": statistics.median(measured),
        "ms_p90": common.percentile(measured, 0.90),
        "ms_p99": common.percentile(measured, 0.99),
        "ms_max": measured[-1],
        "ms_mean": statistics.fmean(measured),
        "ms_min": measured[0],
    })


def run_worker(args: argparse.Namespace) -> None:
    """One role of one engine in this process; prints one result line."""
    engine, role = args.engine, args.worker
    DBOS, Queue, version, patched = _load_engine(engine, args.database_url)

    @DBOS.step(name="qbench_step")
    def qbench_step(i: int) -> int:
        return i + 1

    @DBOS.workflow(name=WORKFLOW_NAME)
    def qbench_one_step(enqueued_at: float) -> float:
        started = time.time()
        qbench_step(1)
        return started - enqueued_at

    bench_queue = Queue(QUEUE_NAME, worker_concurrency=args.worker_concurrency)
    served = [s for s in (args.serve or "").split(",") if s]
    for name in served:
        if name != QUEUE_NAME:
            Queue(name, worker_concurrency=args.worker_concurrency)
    warmup_queue = Queue(WARMUP_QUEUE_NAME) if role == "enqueue" else None

    payload: dict[str, Any] = {"engine": engine, "version": version, "python": sys.version.split()[0],
                               "role": role, "dbos_migration_without_uuid_ossp": patched}
    if role == "serve":
        _serve(DBOS, args, served, payload)
    elif role == "enqueue":
        _enqueue(DBOS, args, (bench_queue, warmup_queue), qbench_one_step, payload)
    elif role == "latency":
        _latency(DBOS, args, bench_queue, qbench_one_step, payload)
    else:
        raise SystemExit(f"unknown role {role!r}")
    common.emit_result(payload)
