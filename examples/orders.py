"""The seed's order workflow, runnable as is: ``python examples/orders.py``.

With no database URL configured it starts (or joins) the embedded Postgres in ``./.pgfleet``.
Run it twice: orders already processed return their recorded result without charging again.
Kill it while it runs (Ctrl-C or ``kill -9``) and start it again: unfinished orders resume
from their first unfinished step.
"""

from __future__ import annotations

import os
import sys
import time

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from runtime import DBOS, SetWorkflowID


@DBOS.workflow()
def process_order(order_id: str):
    # Each step is checkpointed automatically
    payment_result = charge_payment(order_id)
    inventory_result = reserve_inventory(order_id)
    ship_order(order_id)
    DBOS.logger.info("order processed", order_id=order_id)
    return {"order_id": order_id, "status": "completed", "charged": payment_result["charged"],
            "reserved": inventory_result["reserved"]}


@DBOS.step()
def charge_payment(order_id: str):
    # Call payment processor
    print(f"  charging payment for {order_id}")
    return {"charged": True}


@DBOS.step()
def reserve_inventory(order_id: str):
    # Reserve items
    print(f"  reserving inventory for {order_id}")
    time.sleep(0.2)  # long enough to kill the program in the middle of an order
    return {"reserved": True}


@DBOS.step()
def ship_order(order_id: str):
    # Trigger shipping
    print(f"  shipping {order_id}")


def main() -> None:
    DBOS(config={"name": "orders", "system_database_url": os.environ.get("PGFLEET_SYSTEM_DATABASE_URL")})
    DBOS.launch()
    print(f"executor {DBOS.executor_id} on the system database")
    for n in range(1, 6):
        order_id = f"order-{n}"
        print(f"{order_id}:")
        with SetWorkflowID(order_id):  # the order id makes the workflow idempotent
            result = process_order(order_id)
        print(f"  -> {result}")
    steps = DBOS.list_workflow_steps("order-1")
    print("checkpoints of order-1:", [(s.function_id, s.function_name.rsplit('.', 1)[-1]) for s in steps])
    DBOS.destroy()


if __name__ == "__main__":
    main()
