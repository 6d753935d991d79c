"""The enqueue -> start latency phase of ``queue.py``.

On a fresh database one worker serves ``qbench`` and sits idle; a second process (serving no
queue) enqueues ``--latency-count`` workflows one every I ms (``--latency-interval-ms``, one run
per value) on a fixed schedule without waiting for them, passing ``time.time()`` taken just
before ``enqueue``. Latency is the workflow's own ``time.time()`` on entry minus that (both this
host's wall clock): everything until user code runs (insert, wake-up or poll, claim, dispatch to
a thread). The first ``--latency-warmup`` samples are discarded.
"""

from __future__ import annotations

import sys
import time
from typing import Any

if __package__:
    from . import queue_run, queue_worker
else:  # loaded by path by queue.py, which has loaded these the same way first
    queue_run = sys.modules["pgfleet_bench_queue_run"]
    queue_worker = sys.modules["pgfleet_bench_queue_worker"]

RESULT_KEYS = ("count", "interval_ms", "ms_p50", "ms_p90", "ms_p99", "ms_max", "ms_mean", "ms_min")


def latency(run: queue_run.EngineRun, interval_ms: float) -> dict[str, Any]:
    """Enqueue -> start percentiles with one enqueue every ``interval_ms`` into an idle worker."""
    a = run.args
    dbname, url = run.database(f"latency{interval_ms:g}".replace(".", "_"))
    worker: queue_run.Child | None = None
    try:
        print(f"[bench] {run.engine}: enqueue->start latency, {a.latency_count} x every "
              f"{interval_ms:g} ms ...", file=sys.stderr, flush=True)
        worker = run.serve(url, f"qbench-{run.engine}-0", [queue_worker.QUEUE_NAME])
        worker.wait_ready(a.timeout)
        time.sleep(a.settle)
        result = run.one_shot("latency", url, ["--latency-interval-ms", f"{interval_ms:g}"])
        run.note(worker.finish(a.timeout, stop=True))
        worker = None
    finally:
        if worker is not None:
            worker.kill()
        run.drop(dbname)
    return {k: result[k] for k in RESULT_KEYS}
