"""What a chaos run makes its fleet do: the built-in workload (for ``builtin_app.py``) or an
app's own (``--workload MODULE:FUNCTION``, see ``app_workload.py``), one wave at a time.

A wave is enqueued through a ``DBOSClient`` on the run's system database and returns what the
run must find at the end: one :class:`~cluster.process.chaos.model.ExpectedOutcome` per
workflow. The built-in workload knows every output exactly; an app's workload cannot, so its
outcomes only say that each workflow must end, and not from an infrastructure cause.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Protocol

from cluster.process.chaos.app_workload import AppWorkload, WorkloadError
from cluster.process.chaos.builtin_spec import (
    FANOUT,
    JOB,
    LIMITED_QUEUE,
    PLAIN_QUEUE,
    RESULT_EVENT,
    child_id,
    child_output,
    direct_job_id,
    fanout_job_inputs,
    fanout_output,
    job_output,
    queued_job_id,
)
from cluster.process.chaos.model import ExpectedOutcome
from cluster.process.chaos.schedule import SECONDS_PER_WAVE
from runtime import DBOSClient
from runtime.client import EnqueueOptions
from runtime.errors import DBOSDatabaseUnavailableError
from sysdb import DatabaseUnavailableError, is_connection_failure

__all__ = [
    "JOBS_PER_WAVE",
    "FANOUTS_PER_WAVE",
    "ENQUEUE_RETRY_SEC",
    "WorkloadError",
    "Workload",
    "BuiltinWorkload",
    "PlannedEnqueue",
    "AppWorkload",
    "load_workload",
]

# The built-in workload is sized by what the limited queue of 3 nodes x 2 workers finishes at
# the app's default settings: 6 jobs at once, each ~1.7 s (3 steps of 0.2 s, a 1 s sleep, the
# child's start), ~3.5 jobs/s, under the 4/s of its rate limit. A wave (one every
# SECONDS_PER_WAVE, schedule.py) brings as many jobs as the queue finishes meanwhile, so without
# faults it is busy the whole run and with them it backs up (the run's fault-free tail and its
# drain absorb that); the plain queue's fan-outs wait on their queued job, so they stay PENDING
# (exposed to faults) meanwhile. Measured without faults on a shared 2-core host, 10 waves 4 s
# apart: 4-6 limited-queue jobs running at every sample, a backlog of 4-16, and the last of the
# 466 workflows done 2.7 s after the last wave's 4 s.
LIMITED_JOBS_PER_SEC = 3.5
FANOUTS_PER_WAVE = 2  # on the plain queue, each starting 3-5 direct jobs and enqueueing 1 job
JOBS_PER_WAVE = round(LIMITED_JOBS_PER_SEC * SECONDS_PER_WAVE) - FANOUTS_PER_WAVE  # 12: the limited queue's
FANOUT_WIDTHS = (3, 4, 5)
# About one job in six is enqueued with a delay (DELAYED until the leader moves it to ENQUEUED),
# so a leader fault can land on that duty too.
DELAYED_SHARE = 1 / 6
DELAY_RANGE_SEC = (0.5, 3.0)
# How long a wave keeps retrying one enqueue that failed on a lost connection (a Postgres
# restart, a terminated backend); the client's own retries come first.
ENQUEUE_RETRY_SEC = 120.0


class Workload(Protocol):
    """What the runner calls once per wave (``wave`` counts from 0)."""

    @property
    def name(self) -> str:
        """How the run's result names the workload ("built-in" or the ``--workload`` spec)."""
        ...

    def wave(self, client: DBOSClient, wave: int) -> list[ExpectedOutcome]:
        """Start the wave's work through ``client``; the outcome each workflow must reach."""
        ...


@dataclass(frozen=True)
class PlannedEnqueue:
    """One workflow of a wave's plan: what to enqueue, and what it and its children must return."""

    options: EnqueueOptions
    args: tuple[Any, ...]
    outcomes: list[ExpectedOutcome]


def _job_outcomes(workflow_id: str, n: int) -> list[ExpectedOutcome]:
    result = job_output(n)
    return [
        ExpectedOutcome(workflow_id, exact=True, output=result, event_key=RESULT_EVENT, event_value=result),
        ExpectedOutcome(child_id(workflow_id), exact=True, output=child_output(n)),
    ]


def _fanout_outcomes(workflow_id: str, n: int, width: int) -> list[ExpectedOutcome]:
    result = fanout_output(n, width)
    outcomes = [ExpectedOutcome(workflow_id, exact=True, output=result, event_key=RESULT_EVENT, event_value=result)]
    direct, queued = fanout_job_inputs(n, width)
    for i, m in enumerate(direct):
        outcomes += _job_outcomes(direct_job_id(workflow_id, i), m)
    return outcomes + _job_outcomes(queued_job_id(workflow_id), queued)


def _transient(exc: BaseException) -> bool:
    """A failure of the connection, not of the enqueue: trying again may succeed."""
    return isinstance(exc, (DBOSDatabaseUnavailableError, DatabaseUnavailableError)) or is_connection_failure(exc)


class BuiltinWorkload:
    """The built-in workload for ``builtin_app.py``: each wave enqueues ``JOBS_PER_WAVE`` jobs on
    the limited queue (about one in six delayed) and ``FANOUTS_PER_WAVE`` fan-outs on the plain
    queue, in an order and with fan-out widths drawn from ``(seed, wave)``, each count times
    ``scale`` (at least 1). At scale 1 a wave is 14 enqueued workflows and about 46 in all (22
    jobs, their 22 children, 2 fan-outs), 14 of them on the limited queue. Workflow ids are fixed
    (``chaos-w<wave>-job-<i>``, ``chaos-w<wave>-fan-<i>``), so enqueueing a wave again adds
    nothing."""

    name = "built-in"

    def __init__(self, seed: int, waves: int, scale: float = 1.0) -> None:
        if isinstance(waves, bool) or not isinstance(waves, int) or waves < 1:
            raise WorkloadError(f"a workload needs at least one wave, got waves={waves!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise WorkloadError(f"the workload's scale must be a positive number, got {scale!r}")
        self.seed, self.waves, self.scale = seed, waves, float(scale)

    def plan(self, wave: int) -> list[PlannedEnqueue]:
        """The wave's enqueues, in order (pure: the same for the same seed and wave)."""
        if isinstance(wave, bool) or not isinstance(wave, int) or not 0 <= wave < self.waves:
            raise WorkloadError(f"wave {wave!r} is out of range: this workload has waves 0..{self.waves - 1}")
        rng = random.Random(f"pgfleet-chaos:{self.seed}:{wave}")
        plan: list[PlannedEnqueue] = []
        for i in range(max(1, round(JOBS_PER_WAVE * self.scale))):
            workflow_id, n = f"chaos-w{wave}-job-{i}", wave * 100_000 + i
            options: EnqueueOptions = {"workflow_name": JOB, "queue_name": LIMITED_QUEUE, "workflow_id": workflow_id}
            if rng.random() < DELAYED_SHARE:
                options["delay_seconds"] = round(rng.uniform(*DELAY_RANGE_SEC), 2)
            plan.append(PlannedEnqueue(options, (n,), _job_outcomes(workflow_id, n)))
        for i in range(max(1, round(FANOUTS_PER_WAVE * self.scale))):
            workflow_id, n, width = f"chaos-w{wave}-fan-{i}", wave * 100_000 + 50_000 + i, rng.choice(FANOUT_WIDTHS)
            options = {"workflow_name": FANOUT, "queue_name": PLAIN_QUEUE, "workflow_id": workflow_id}
            plan.append(PlannedEnqueue(options, (n, width), _fanout_outcomes(workflow_id, n, width)))
        rng.shuffle(plan)  # fan-outs among the jobs, not all at the end
        return plan

    def wave(self, client: DBOSClient, wave: int) -> list[ExpectedOutcome]:
        """Enqueue the wave (idempotently, retrying lost connections for ``ENQUEUE_RETRY_SEC``)
        and return every workflow's exact outcome, children included."""
        plan = self.plan(wave)
        for item in plan:
            _enqueue_retrying(client, item, time.monotonic() + ENQUEUE_RETRY_SEC)
        return [outcome for item in plan for outcome in item.outcomes]


def _enqueue_retrying(client: DBOSClient, item: PlannedEnqueue, deadline: float) -> None:
    """Enqueue ``item``; on a lost connection try again (the fixed workflow id makes a retry of
    an enqueue that did commit a no-op) until ``deadline``."""
    pause = 0.1
    while True:
        try:
            client.enqueue(item.options, *item.args)
            return
        except Exception as exc:
            if not _transient(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise WorkloadError(
                    f"could not enqueue {item.options.get('workflow_id')!r}: the system database kept failing "
                    f"for {ENQUEUE_RETRY_SEC:g}s ({type(exc).__name__}: {exc})"
                ) from exc
            time.sleep(pause)  # a restarting server: give it a moment, then try again
            pause = min(pause * 2, 2.0)


def load_workload(spec: str | None, seed: int, waves: int, *, scale: float = 1.0) -> Workload:
    """The workload of a run: the built-in one (of this ``scale``) without ``spec``, else the
    app's ``MODULE:FUNCTION`` (imported and checked now, so a bad spec fails before anything
    starts; an app's workload has no scale)."""
    if spec is None:
        return BuiltinWorkload(seed, waves, scale)
    return AppWorkload(spec, seed=seed, waves=waves)
