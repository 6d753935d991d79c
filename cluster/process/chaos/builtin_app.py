"""The built-in app of ``pgfleet chaos`` (used when no ``--workload`` is given): a pgfleet app
module that ``pgfleet supervise <this file>`` serves, and that exercises what a fault can break.

- ``chaos_job(n)``, enqueued on the limited queue ``chaos-limited`` (fleet-wide concurrency,
  per-worker concurrency and a rate limiter): a step, a child workflow called directly
  (``chaos_child``, itself one step), a durable sleep, another step; then it sets the event
  ``result`` to its result and returns it.
- ``chaos_fanout(n, width)``, enqueued on the plain queue ``chaos-plain`` (no limits): starts
  ``width`` ``chaos_job`` workflows directly (owned by its executor, not queued: a takeover
  hands them to a live member), enqueues one more on the limited queue from inside the
  workflow, runs a step, waits for all of them, sets ``result`` and returns it.

Every step body sleeps ``PGFLEET_CHAOS_STEP_SECONDS`` so that faults land mid-workflow; the
other tunables are in :class:`~cluster.process.chaos.builtin_spec.AppSettings`. Every output is
a function of the inputs alone (``builtin_spec.job_output`` and friends), so the checker knows
exactly what each workflow must have returned. Children get ids derived from their parent's
(``<parent>-child``, ``<parent>-d<i>``, ``<parent>-q``), so their outcomes are known too. The
app has no application database and no transactions: everything it records is in the system
database, where a chaos run looks.
"""

from __future__ import annotations

import time

from cluster.process.chaos.builtin_spec import (
    CHILD,
    FANOUT,
    JOB,
    LIMITED_QUEUE,
    PLAIN_QUEUE,
    RESULT_EVENT,
    AppSettings,
    child_id,
    direct_job_id,
    fanout_job_inputs,
    queued_job_id,
    step_output,
)
from runtime import DBOS, Queue, SetWorkflowID

SETTINGS = AppSettings.from_env()

limited_queue = Queue(
    LIMITED_QUEUE,
    concurrency=SETTINGS.concurrency,
    worker_concurrency=SETTINGS.worker_concurrency,
    limiter={"limit": SETTINGS.rate_limit, "period": SETTINGS.rate_period_sec},
)
plain_queue = Queue(PLAIN_QUEUE)


def _workflow_id() -> str:
    workflow_id = DBOS.workflow_id
    assert workflow_id is not None, "called inside a workflow"
    return workflow_id


@DBOS.step(name="chaos_step")
def chaos_step(n: int, k: int) -> int:
    """A step that takes a little time (so a kill or a pause can land inside its body)."""
    time.sleep(SETTINGS.step_seconds)
    return step_output(n, k)


@DBOS.workflow(name=CHILD)
def chaos_child(n: int) -> int:
    """A child workflow of one step."""
    return chaos_step(n, 5) + 1


@DBOS.workflow(name=JOB)
def chaos_job(n: int) -> dict[str, int]:
    """A step, a child workflow, a durable sleep, a step; the result is also an event."""
    a = chaos_step(n, 1)
    with SetWorkflowID(child_id(_workflow_id())):
        child = chaos_child(n)
    DBOS.sleep(SETTINGS.sleep_seconds)
    b = chaos_step(n, 2)
    result = {"n": n, "a": a, "child": child, "b": b}
    DBOS.set_event(RESULT_EVENT, result)
    return result


@DBOS.workflow(name=FANOUT)
def chaos_fanout(n: int, width: int) -> dict[str, object]:
    """Direct jobs and a queued job, started from a workflow, and their results collected."""
    me = _workflow_id()
    direct, queued = fanout_job_inputs(n, width)
    handles = []
    for i, m in enumerate(direct):
        with SetWorkflowID(direct_job_id(me, i)):
            handles.append(DBOS.start_workflow(chaos_job, m))
    with SetWorkflowID(queued_job_id(me)):
        queued_handle = limited_queue.enqueue(chaos_job, queued)
    first = chaos_step(n, 0)
    result: dict[str, object] = {
        "n": n,
        "first": first,
        "jobs": [h.get_result() for h in handles],
        "queued": queued_handle.get_result(),
    }
    DBOS.set_event(RESULT_EVENT, result)
    return result
