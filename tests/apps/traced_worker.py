"""A queue worker with tracing on, for tests/test_tracing.py.

    traced_worker.py URL EXECUTOR_ID READY_FILE COLLECTOR_URL

launches DBOS with EXECUTOR_ID against URL, ``enable_otlp`` on and its spans sent to
COLLECTOR_URL (``otlp_traces_endpoints``: the test's OTLP/HTTP collector), serves the queue
"traced" (workflow ``traced_order``: a step that fails its first attempt, then one that does
not), writes READY_FILE, and runs until SIGTERM; then it destroys DBOS, flushes its spans and
exits 0. It gives up by itself after MAX_LIFETIME_SEC so a failed test never leaves it behind.
"""

import signal
import sys
import threading

from opentelemetry import trace

from runtime import DBOS, Queue

MAX_LIFETIME_SEC = 120

url, executor_id, ready_file, collector_url = sys.argv[1:5]

DBOS(config={
    "name": "traced-worker", "system_database_url": url, "executor_id": executor_id, "log_level": "WARNING",
    "application_version": "tracing-tests", "enable_otlp": True, "otlp_traces_endpoints": [collector_url],
})
Queue("traced", polling_interval_sec=0.1)
failed_once: set[str] = set()


@DBOS.step(name="charge", retries_allowed=True, max_attempts=3, interval_seconds=0.01)
def charge(order: str) -> str:
    if order not in failed_once:
        failed_once.add(order)
        raise RuntimeError(f"card declined for {order}")
    return f"charged {order}"


@DBOS.step(name="pack")
def pack(order: str) -> str:
    return f"packed {order}"


@DBOS.workflow(name="traced_order")
def traced_order(order: str) -> list[str]:
    return [charge(order), pack(order)]


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
DBOS.launch()
with open(ready_file, "w") as f:
    f.write("ready")
stop.wait(MAX_LIFETIME_SEC)
DBOS.destroy()
trace.get_tracer_provider().shutdown()  # type: ignore[attr-defined]  # the SDK's: flushes the batches
