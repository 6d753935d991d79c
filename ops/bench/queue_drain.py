"""The drain phase of ``queue.py``, its history, and the raw bound it is set against (issue #14).

Drain: for each K in ``--processes`` on a fresh database, ``--count`` workflows are enqueued
(the enqueue role), then the parent locks every one of their rows (``SELECT ... FOR UPDATE`` in
an open transaction), starts K worker processes with distinct executor ids that serve
``qbench``, waits until every one has launched and reported ready plus ``--settle`` seconds, and
commits: both engines claim with ``FOR UPDATE SKIP LOCKED``, so until then every worker polls
and finds nothing, and afterwards all K see the work on their next poll. The rate is ``count /
(last completed_at - first started_at_epoch_ms)`` read back from ``dbos.workflow_status``, i.e.
from the first dequeue to the last completion. ``--history ROWS`` first adds that many finished
workflows of another queue (one ``INSERT ... SELECT generate_series``, then ``VACUUM ANALYZE`` and
a ``CHECKPOINT``, so the drain does not run beside the checkpoint the build's WAL started).

Bound: the raw bound of ``bound.py`` (N psycopg connections in autocommit, each committing
single-row INSERTs shaped like a step checkpoint into a scratch table), for N = K x
``POOL_SIZE`` -- the connections K processes can hold at once (both engines' default system
database pool is 20 per process) -- measured before and after the engines in the run's scratch
database; the higher of the two is the bound. **Durable writes per queued workflow** are counted
as issue #14 counts them: enqueue + claim + 1 step + finish = ``WRITES_PER_WORKFLOW`` (4). It is a
nominal count of row writes, the same for both engines: the enqueues are committed before the
drain's window (so the share flatters a little), and one claim commits up to a batch of rows
(pgfleet: up to the free worker concurrency), so the server commits fewer than 4 times per
workflow. share = drain wf/s x 4 / raw commits/s with N connections.
"""

from __future__ import annotations

import sys
import time
from typing import Any

if __package__:
    from . import bound, common, queue_run, queue_worker
else:  # loaded by path by queue.py, which has loaded these the same way first
    common = sys.modules["pgfleet_bench_common"]
    bound = sys.modules["pgfleet_bench_bound"]
    queue_run = sys.modules["pgfleet_bench_queue_run"]
    queue_worker = sys.modules["pgfleet_bench_queue_worker"]

QUEUE_NAME = queue_worker.QUEUE_NAME
MONITOR_INTERVAL_S = 0.05
POOL_SIZE = 20  # pgfleet's and DBOS's default system database pool, per process
WRITES_PER_WORKFLOW = 4  # enqueue + claim + 1 step + finish (issue #14's count)
ENQUEUE_KEYS = ("enqueue_per_s", "elapsed_s", "ms_p50", "ms_p99", "cpu_ms_per_enqueue")


def bound_connections(processes: int) -> int:
    """How many connections a drain with ``processes`` processes can use at once."""
    return processes * POOL_SIZE


def add_history(url: str, rows: int) -> None:
    """Insert ``rows`` finished workflows of another queue, as a system database with history."""
    print(f"[bench] adding {rows} finished workflows of history ...", file=sys.stderr, flush=True)
    common.fill_history(url, rows, name=queue_worker.WORKFLOW_NAME, queue="qbench_history", version=queue_worker.APP_VERSION)


def _hold_rows(lock_conn: Any, count: int, engine: str) -> None:
    """Lock every enqueued row in ``lock_conn``'s open transaction (both engines skip locked rows)."""
    locked = lock_conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM dbos.workflow_status WHERE queue_name = %s "
        "AND status = 'ENQUEUED' FOR UPDATE) AS held", (QUEUE_NAME,)).fetchone()[0]
    if locked != count:
        raise SystemExit(f"[bench] {engine}: expected {count} enqueued workflows, found {locked}")


def _wait_done(monitor: Any, count: int, engine: str, timeout: float) -> None:
    """Poll until every bench workflow is SUCCESS (any other final status fails the run)."""
    deadline = time.monotonic() + timeout
    while True:
        done, failed = monitor.execute(
            "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), "
            "count(*) FILTER (WHERE status NOT IN ('SUCCESS', 'ENQUEUED', 'PENDING')) "
            "FROM dbos.workflow_status WHERE queue_name = %s", (QUEUE_NAME,)).fetchone()
        if failed:
            raise SystemExit(f"[bench] {engine}: {failed} workflows ended in another status than SUCCESS")
        if done >= count:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"[bench] {engine}: only {done}/{count} done after {timeout:.0f}s")
        time.sleep(MONITOR_INTERVAL_S)


def _release_and_time(run: queue_run.EngineRun, url: str, processes: int) -> tuple[dict[str, Any], list[Any]]:
    """Hold the rows, start the workers, release, wait: the times read back and the workers."""
    import psycopg

    a = run.args
    workers: list[queue_run.Child] = []
    try:
        with psycopg.connect(url) as lock_conn, psycopg.connect(url, autocommit=True) as monitor:
            _hold_rows(lock_conn, a.count, run.engine)
            workers = [run.serve(url, f"qbench-{run.engine}-{i}", [QUEUE_NAME]) for i in range(processes)]
            ready = [w.wait_ready(a.timeout) for w in workers]
            time.sleep(a.settle)
            released = time.time()
            lock_conn.commit()
            _wait_done(monitor, a.count, run.engine, a.timeout)
            observed = time.time()
            first_start, last_done = monitor.execute(
                "SELECT min(started_at_epoch_ms), max(completed_at) FROM dbos.workflow_status "
                "WHERE queue_name = %s", (QUEUE_NAME,)).fetchone()
            per_executor = dict(monitor.execute(
                "SELECT executor_id, count(*) FROM dbos.workflow_status WHERE queue_name = %s "
                "GROUP BY executor_id ORDER BY executor_id", (QUEUE_NAME,)).fetchall())
        served = [w.finish(a.timeout, stop=True) for w in workers]
        workers = []
    finally:
        for w in workers:
            w.kill()
    times = {"released": released, "observed": observed, "first_start": first_start, "last_done": last_done,
             "per_executor": per_executor, "launch_s": [r["launch_s"] for r in ready]}
    return times, served


def drain(run: queue_run.EngineRun, processes: int) -> dict[str, Any]:
    """Enqueue ``--count``, then drain them with ``processes`` processes released together."""
    a = run.args
    dbname, url = run.database(f"drain{processes}")
    try:
        print(f"[bench] {run.engine}: enqueue {a.count}, then drain with {processes} process(es) ...",
              file=sys.stderr, flush=True)
        enqueue = run.one_shot("enqueue", url)
        if a.history:
            add_history(url, a.history)
        times, served = _release_and_time(run, url, processes)
    finally:
        run.drop(dbname)
    for r in served:
        run.note(r)
    seconds = (times["last_done"] - times["first_start"]) / 1000.0
    cpu = sum(r["serve_cpu_s"] for r in served)
    return {
        "processes": processes,
        "count": a.count,
        "enqueue": {k: enqueue[k] for k in ENQUEUE_KEYS},
        "drain_s": seconds,
        "drain_per_s": a.count / seconds if seconds > 0 else None,
        "release_to_first_start_ms": times["first_start"] - 1000.0 * times["released"],
        "release_to_all_seen_s": times["observed"] - times["released"],
        "per_executor": times["per_executor"],
        "worker_cpu_s": cpu,
        "worker_cpu_ms_per_wf": 1000.0 * cpu / a.count,
        "launch_s": times["launch_s"],
    }


class DrainBound:
    """The raw bound for every drain's connection count, in one scratch database of the run."""

    def __init__(self, server_url: str, stamp: str, processes: list[int], seconds: float, keep: bool) -> None:
        self.server_url = server_url
        self.dbname = f"bench_raw_{stamp}"
        self.connections = sorted({bound_connections(k) for k in processes})
        self.seconds = seconds
        self.keep = keep
        self.url: str | None = None
        self._before: dict[str, Any] = {}

    def before(self) -> None:
        """Create the scratch table and measure, before the engines run."""
        if self.seconds <= 0:
            return
        self.url = bound.scratch_database(self.server_url, self.dbname)
        self._before = bound.measure_bounds(self.url, self.connections, self.seconds, "before the engines")

    def after(self) -> dict[str, Any]:
        """Measure again after the engines; both measurements and the bound (the higher) per N."""
        if self.url is None:
            return {}
        after = bound.measure_bounds(self.url, self.connections, self.seconds, "after the engines")
        return bound.merge_bounds(self._before, after)

    def close(self) -> None:
        """Drop the scratch database (unless ``--keep-databases``)."""
        if self.url is not None and not self.keep:
            common.admin(self.server_url, f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


def shares(bounds: dict[str, Any], run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per process count: the drain's durable writes/s and its share of the raw bound."""
    out: dict[str, dict[str, float]] = {}
    for k, d in run["drain"].items():
        b = bounds.get(str(bound_connections(int(k))))
        if b is None or not d.get("drain_per_s"):
            continue
        writes = d["drain_per_s"] * WRITES_PER_WORKFLOW
        out[k] = {"connections": bound_connections(int(k)), "raw_commits_per_s": b["commits_per_s"],
                  "writes_per_s": writes, "share": writes / b["commits_per_s"]}
    return out
