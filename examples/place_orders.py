"""Feed orders to a running fleet and watch them spread over the workers.

    python examples/place_orders.py [COUNT]

Enqueues COUNT orders (default 40) on the "orders" queue with DBOSClient, from a process that
runs no workflows, then shows progress once a second: how many are waiting, running and done,
and which executor did them. Start the fleet first: ``pgfleet supervise examples/orders.py``.
"""

from __future__ import annotations

import collections
import os
import sys
import time
import uuid

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime import DBOSClient


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    client = DBOSClient()  # PGFLEET_SYSTEM_DATABASE_URL, else this host's embedded server
    batch = uuid.uuid4().hex[:6]
    ids = []
    for n in range(count):
        order_id = f"order-{batch}-{n}"
        client.enqueue({"workflow_name": "process_order", "queue_name": "orders", "workflow_id": order_id}, order_id)
        ids.append(order_id)
    print(f"enqueued {count} orders (batch {batch}); progress:")
    try:
        while True:
            rows = client.list_workflows(workflow_ids=ids, load_input=False, load_output=False)
            by_status = collections.Counter(w.status for w in rows)
            by_executor = collections.Counter(w.executor_id for w in rows if w.status == "SUCCESS")
            print(f"  waiting {by_status['ENQUEUED']:3}  running {by_status['PENDING']:3}  done {by_status['SUCCESS']:3}"
                  f"  by executor: {dict(sorted(by_executor.items()))}", flush=True)
            if by_status["SUCCESS"] + by_status["ERROR"] == count:
                break
            time.sleep(1)
    finally:
        client.destroy()


if __name__ == "__main__":
    main()
