"""Client time per workflow: wall and CPU microseconds of one 3-step workflow, in this process.

    .venv/bin/python ops/bench/client_cpu.py --embedded-dir /tmp/bench-pg --threads 1,8
    .venv/bin/python ops/bench/client_cpu.py --embedded-dir /tmp/bench-pg --repo /path/to/other/checkout

What is measured
----------------
pgfleet is launched in this process on a fresh database, ``--warmup`` 3-step workflows are run,
then ``--rounds`` rounds of ``--count`` workflows called directly from ``--threads`` threads (each
thread ``count / threads`` of them, released together), after one short untimed round with as
many threads (the pool grows to one connection per thread in it). Per round: wall microseconds per workflow
and CPU microseconds per workflow -- the calling thread's ``time.thread_time`` with one thread,
the whole process's ``time.process_time`` with several (the background loops are idle and add
a few microseconds). The medians of the rounds are printed.

Why CPU: on a shared 2-core machine the wall time of a durable commit moves by tens of percent
from one minute to the next, while the client's own CPU time per workflow barely moves with the
server's load. It is what pgfleet's hot-path cuts change (issue #14); the share of the raw bound
(``workflows.py --threads``) is what they are for.

``--repo`` imports pgfleet from another checkout (for before/after: a ``git worktree`` of the
older commit), so two versions are compared by one script, interleaved by the caller.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if __name__ == "__main__":
    # Run as a file, this directory is sys.path[0] and its queue.py would shadow the standard library's.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != str(_HERE)]


def _workflow(repo: Path, url: str, *, pool_size: int | None = None) -> Any:
    """pgfleet from ``repo``, launched on ``url`` (with ``sys_db_pool_size`` if given), with a
    3-step workflow; (DBOS, workflow)."""
    sys.path.insert(0, str(repo))
    from runtime import DBOS

    @DBOS.step()
    def cpu_step(i: int) -> int:
        return i + 1

    @DBOS.workflow()
    def cpu_workflow() -> int:
        return sum(cpu_step(i) for i in range(3))

    config: dict[str, Any] = {"name": "client-cpu", "system_database_url": url, "log_level": "WARNING", "run_admin_server": False}
    if pool_size is not None:
        config["sys_db_pool_size"] = pool_size
    DBOS(config=config)
    DBOS.launch()
    return DBOS, cpu_workflow


def _round(workflow: Any, threads: int, count: int) -> tuple[float, float]:
    """One round: (wall us/wf, CPU us/wf)."""
    per_thread = count // threads
    if threads == 1:
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(per_thread):
            workflow()
        return (time.perf_counter() - wall) / per_thread * 1e6, (time.thread_time() - cpu) / per_thread * 1e6
    barrier = threading.Barrier(threads + 1)

    def run() -> None:
        barrier.wait()
        for _ in range(per_thread):
            workflow()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for w in workers:
        w.join()
    done = per_thread * threads
    return (time.perf_counter() - wall) / done * 1e6, (time.process_time() - cpu) / done * 1e6


def _common() -> Any:
    sys.path.append(str(_HERE))  # last: its queue.py must not shadow the standard library's
    import common

    return common


@contextlib.contextmanager
def launched(database_url: str | None, embedded_dir: str, repo: Path, label: str, *,
             pool_size: int | None = None) -> Iterator[tuple[str, Any]]:
    """pgfleet from ``repo`` launched on a fresh database ``bench_<label>_<pid>`` of the
    server (``database_url``, else the embedded one under ``embedded_dir``), with a 3-step
    workflow: ``(database URL, workflow)``; destroyed and the database dropped on exit."""
    common = _common()
    server = common.BenchServer(database_url, embedded_dir)
    dbname = f"bench_{label}_{os.getpid()}"
    common.admin(str(server.url), f'CREATE DATABASE "{dbname}"')
    DBOS = None
    try:
        url = common.with_database(str(server.url), dbname)
        DBOS, workflow = _workflow(repo, url, pool_size=pool_size)
        yield url, workflow
    finally:
        if DBOS is not None:
            DBOS.destroy()
        common.admin(str(server.url), f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        server.close(keep_server=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="Postgres server URL (default: the embedded server)")
    parser.add_argument("--embedded-dir", default=".pgfleet", help="embedded server base dir (default ./.pgfleet)")
    parser.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    parser.add_argument("--count", type=int, default=1500, help="workflows per round (default 1500)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per thread count (default 3)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed workflows first (default 100)")
    parser.add_argument("--repo", type=Path, default=_HERE.parent.parent, help="the checkout to import pgfleet from")
    parser.add_argument("--with-console-indexes", action="store_true",
                        help="build migration 0009's indexes again after launch (0011 dropped them): their cost alone")
    args = parser.parse_args(argv)
    thread_counts = [int(n) for n in args.threads.split(",") if n.strip()]

    with launched(args.database_url, args.embedded_dir, args.repo.resolve(), "cpu") as (url, workflow):
        if args.with_console_indexes:
            _common().admin(url, (args.repo / "sysdb" / "migrations" / "0009_console_indexes.sql").read_text("utf-8"))
        for _ in range(args.warmup):
            workflow()
        for threads in thread_counts:
            _round(workflow, threads, min(args.count, 50 * threads))  # untimed: the pool grows to `threads` connections
            rounds = [_round(workflow, threads, args.count) for _ in range(args.rounds)]
            wall = statistics.median(r[0] for r in rounds)
            cpu = statistics.median(r[1] for r in rounds)
            label = f"{args.repo}{' +0009 indexes' if args.with_console_indexes else ''}"
            print(f"{label}  threads {threads}: wall {wall:,.0f} us/wf, CPU {cpu:,.0f} us/wf "
                  f"(rounds: {', '.join(f'{w:,.0f}/{c:,.0f}' for w, c in rounds)})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
