"""An async app in DBOS's style: FastAPI handlers that start async workflows and await them.

As a fleet and a web front (two terminals; the web front needs ``pip install fastapi uvicorn``)::

    pgfleet supervise examples/async_orders.py --workers 2     # the workers run queued orders
    python examples/async_orders.py serve --port 8000          # the FastAPI app

    curl -X POST localhost:8000/orders/o-1          # DBOS.start_workflow_async: runs in the web process, on its loop
    curl -X POST localhost:8000/orders/o-2/queue    # Queue.enqueue_async: one of the fleet's workers runs it
    curl localhost:8000/orders/o-1                  # awaits the order's result

The web process is an executor of the fleet like the workers (it serves no queue): kill it while
an order it started runs, and a worker takes the order over and finishes it from its first
unfinished step. As a plain program, ``python examples/async_orders.py`` runs four orders in this
process: three awaited at once with ``asyncio.gather``, one started in the background.

With no database URL configured, every process starts (or joins) the embedded Postgres in
``./.pgfleet``; ``PGFLEET_SYSTEM_DATABASE_URL`` names another.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime import DBOS, Queue, SetWorkflowID

CONFIG: dict[str, Any] = {"name": "async_orders"}

# Orders enqueued by the web front wait here for the fleet, at most ten at a time fleet-wide.
order_queue = Queue("async_orders", concurrency=10)


@DBOS.workflow()
async def fulfil_order(order_id: str) -> dict[str, Any]:
    # Each awaited step is checkpointed; a recovered order skips the steps it finished.
    payment = await charge_payment(order_id)
    reserved = await reserve_inventory(order_id)
    await ship_order(order_id)
    DBOS.logger.info(f"order {order_id} fulfilled")
    return {"order_id": order_id, "charged": payment["charged"], "reserved": reserved["reserved"],
            "executor": DBOS.executor_id}


@DBOS.step()
async def charge_payment(order_id: str) -> dict[str, bool]:
    print(f"  charging payment for {order_id}", flush=True)
    return {"charged": True}


@DBOS.step()
async def reserve_inventory(order_id: str) -> dict[str, bool]:
    print(f"  reserving inventory for {order_id}", flush=True)
    # An await, not a blocking sleep: other orders run on the loop meanwhile.
    await asyncio.sleep(float(os.environ.get("ORDERS_STEP_SECONDS", "1.0")))
    return {"reserved": True}


@DBOS.step()
async def ship_order(order_id: str) -> None:
    print(f"  shipping {order_id}", flush=True)


def create_app() -> Any:
    """The FastAPI app (FastAPI is imported here: the workers need only the workflows)."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.post("/orders/{order_id}")
    async def start_order(order_id: str) -> dict[str, str]:
        # The order id is the workflow id: posting the same order twice starts it once.
        with SetWorkflowID(order_id):
            handle = await DBOS.start_workflow_async(fulfil_order, order_id)
        return {"workflow_id": handle.get_workflow_id()}

    @app.post("/orders/{order_id}/queue")
    async def queue_order(order_id: str) -> dict[str, str]:
        with SetWorkflowID(order_id):
            handle = await order_queue.enqueue_async(fulfil_order, order_id)
        return {"workflow_id": handle.get_workflow_id()}

    @app.get("/orders/{order_id}")
    async def order_result(order_id: str) -> Any:
        handle = await DBOS.retrieve_workflow_async(order_id)
        return await handle.get_result()  # waits on the loop, holding no thread

    return app


def serve(host: str, port: int) -> None:
    import uvicorn

    app = create_app()
    DBOS(config=CONFIG, fastapi=app)  # its lifespan launches DBOS, and destroys it at shutdown
    DBOS.listen_queues([])  # the fleet's workers run the queue; this process runs what its handlers start
    uvicorn.run(app, host=host, port=port)


async def place_orders() -> None:
    async def one(order_id: str) -> dict[str, Any]:
        with SetWorkflowID(order_id):  # the order id makes the workflow idempotent
            return await fulfil_order(order_id)

    for result in await asyncio.gather(*(one(f"async-order-{n}") for n in range(1, 4))):
        print(f"  -> {result}")
    with SetWorkflowID("async-order-4"):
        handle = await DBOS.start_workflow_async(fulfil_order, "async-order-4")
    print(f"  -> {await handle.get_result()} (started in the background)")


def main() -> None:
    parser = argparse.ArgumentParser(description="pgfleet's async order example")
    parser.add_argument("command", nargs="?", choices=("run", "serve"), default="run",
                        help="run: four orders in this process (default); serve: the FastAPI app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if args.command == "serve":
        serve(args.host, args.port)
        return
    DBOS(config=CONFIG)
    DBOS.launch()
    print(f"executor {DBOS.executor_id}")
    asyncio.run(place_orders())
    steps = DBOS.list_workflow_steps("async-order-1")
    print("checkpoints of async-order-1:", [(s["function_id"], s["function_name"].rsplit(".", 1)[-1]) for s in steps])
    DBOS.destroy()


if __name__ == "__main__":
    main()
