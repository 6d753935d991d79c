"""An executor that starts long workflows and then leaves gracefully with them unfinished
(tests/test_cluster.py): DBOS.destroy() must hand them to the live members at once.

    leaver.py URL
"""

import sys
import time

from runtime import DBOS, SetWorkflowID

url = sys.argv[1]


@DBOS.step()
def slow_step(i):
    time.sleep(0.3)
    return i


@DBOS.workflow(name="leaver_job")
def leaver_job(n):
    return [slow_step(i) for i in range(n)]


DBOS(config={"name": "leaver", "system_database_url": url, "executor_id": "leaver",
             "heartbeat_interval_sec": 0.25, "member_timeout_sec": 30})
DBOS.launch()
for i in range(3):
    with SetWorkflowID(f"left-{i}"):
        DBOS.start_workflow(leaver_job, 6)
time.sleep(0.8)  # a step or two each, then leave with the rest unfinished
DBOS.destroy()
print("left", flush=True)
