"""Start workflow "shared-id" in this process (tests/test_recovery.py runs two at once).

    same_id.py URL LEDGER EXECUTOR_ID
"""

import os
import sys
import time

from runtime import DBOS, SetWorkflowID

url, ledger, executor_id = sys.argv[1:4]


@DBOS.workflow()
def shared():
    with open(ledger, "a") as f:
        f.write(f"body {os.getpid()}\n")
    time.sleep(0.5)  # long enough for the other process to arrive while this one runs
    return "ran once"


DBOS(config={"name": "same-id", "system_database_url": url, "executor_id": executor_id})
DBOS.launch()
with SetWorkflowID("shared-id"):
    print("result", shared(), flush=True)
DBOS.destroy()
