"""The seed's order workflow, runnable two ways.

As a fleet (the main job)::

    pgfleet supervise examples/orders.py --workers 2      # workers claim orders from the queue
    python examples/place_orders.py 40                    # in another terminal: feed it work

As a plain program: ``python examples/orders.py`` processes five orders in this process.

Under failover testing, with ``chaos_workload`` (below) feeding the fleet::

    pgfleet chaos examples/orders.py --workload examples/orders.py:chaos_workload

With no database URL configured both start (or join) the embedded Postgres in ``./.pgfleet``.
Kill a worker (``kill -9 <pid>`` from ``pgfleet status``) and watch its orders move: the
supervisor replaces it, and its unfinished orders resume from their first unfinished step.
"""

from __future__ import annotations

import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime import DBOS, Queue, SetWorkflowID

# Orders are processed in the background, at most ten at a time across the whole fleet.
order_queue = Queue("orders", concurrency=10)


@DBOS.workflow()
def process_order(order_id: str):
    # Each step is checkpointed automatically
    payment_result = charge_payment(order_id)
    inventory_result = reserve_inventory(order_id)
    ship_order(order_id)
    DBOS.logger.info("order processed", order_id=order_id)
    return {"order_id": order_id, "status": "completed", "charged": payment_result["charged"],
            "reserved": inventory_result["reserved"], "executor": DBOS.get_context().executor_id}


@DBOS.step()
def charge_payment(order_id: str):
    # Call payment processor
    print(f"  charging payment for {order_id}", flush=True)
    return {"charged": True}


@DBOS.step()
def reserve_inventory(order_id: str):
    # Reserve items
    print(f"  reserving inventory for {order_id}", flush=True)
    time.sleep(float(os.environ.get("ORDERS_STEP_SECONDS", "1.0")))  # time enough to kill a worker mid-order
    return {"reserved": True}


@DBOS.step()
def ship_order(order_id: str):
    # Trigger shipping
    print(f"  shipping {order_id}", flush=True)


@DBOS.workflow()
def process_batch(orders):
    # The seed's queue example, as written.
    handles = [order_queue.enqueue(process_order, o) for o in orders]
    return [h.get_result() for h in handles]


# A wave every 4 s of 40 orders is what the queue finishes in that time (10 at once, about 1 s each):
# the queue stays busy, so every fault finds orders in flight.
ORDERS_PER_WAVE = 40


def chaos_workload(client, wave):
    # `pgfleet chaos` calls this once per wave with a DBOSClient on the fleet's database: enqueue
    # orders as examples/place_orders.py does, with ids fixed by the wave (a retried wave enqueues
    # nothing twice), and return their ids so the run can check that every one of them finished.
    order_ids = [f"chaos-order-{wave}-{n}" for n in range(ORDERS_PER_WAVE)]
    for order_id in order_ids:
        client.enqueue({"workflow_name": "process_order", "queue_name": "orders", "workflow_id": order_id}, order_id)
    return order_ids


def main() -> None:
    DBOS(config={"name": "orders"})
    DBOS.launch()
    print(f"executor {DBOS.executor_id}")
    for n in range(1, 6):
        order_id = f"order-{n}"
        print(f"{order_id}:")
        with SetWorkflowID(order_id):  # the order id makes the workflow idempotent
            result = process_order(order_id)
        print(f"  -> {result}")
    steps = DBOS.list_workflow_steps("order-1")
    print("checkpoints of order-1:", [(s["function_id"], s["function_name"].rsplit('.', 1)[-1]) for s in steps])
    with SetWorkflowID("batch-1"):
        print("batch through the queue:", [r["order_id"] for r in process_batch([f"batch-order-{i}" for i in range(5)])])
    DBOS.destroy()


if __name__ == "__main__":
    main()
