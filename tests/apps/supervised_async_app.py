"""An async app for `pgfleet supervise` (tests/test_async_drain.py): a queue of multi-step
``async def`` jobs.

Every step body writes a row to public.side_effects (tests/faults/ledger.py) as it starts,
then sleeps PGFLEET_TEST_STEP_SECONDS on the loop.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/, for faults
from faults.ledger import record_step_start  # noqa: E402
from runtime import DBOS, Queue  # noqa: E402

jobs = Queue("async-jobs", worker_concurrency=4)


@DBOS.step(name="async_job_step")
async def async_job_step(i: int) -> int:
    await asyncio.to_thread(record_step_start, os.environ["PGFLEET_SYSTEM_DATABASE_URL"], DBOS.executor_id)
    await asyncio.sleep(float(os.environ.get("PGFLEET_TEST_STEP_SECONDS", "0.2")))
    return i


@DBOS.workflow(name="supervised_async_job")
async def supervised_async_job(steps: int) -> int:
    return sum([await async_job_step(i) for i in range(steps)])
