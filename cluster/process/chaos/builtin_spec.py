"""What the built-in chaos app (``builtin_app.py``) and its workload (``workload.py``) agree on:
the workflow and queue names, the settings the app reads from its environment, and the output
each workflow must return, computed from its inputs alone.

This module registers nothing (no workflow, no queue), so the runner and the checker can import
it without declaring the app's queues in their own process; ``builtin_app.py`` does the
registering, in the fleet's workers only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "APP_PATH",
    "JOB",
    "CHILD",
    "FANOUT",
    "LIMITED_QUEUE",
    "PLAIN_QUEUE",
    "RESULT_EVENT",
    "AppSettings",
    "step_output",
    "child_output",
    "job_output",
    "fanout_output",
    "fanout_job_inputs",
    "child_id",
    "direct_job_id",
    "queued_job_id",
]

# The file `pgfleet supervise` runs: the built-in app, next to this module.
APP_PATH = Path(__file__).resolve().parent / "builtin_app.py"

# Workflow names (given explicitly, so an enqueue by name never depends on a module path).
JOB = "chaos_job"
CHILD = "chaos_child"
FANOUT = "chaos_fanout"
# The queue with every kind of limit (fleet-wide and per-worker concurrency, a rate limiter)
# and the queue with none: a limit must hold under faults, and unlimited work must not stall.
LIMITED_QUEUE = "chaos-limited"
PLAIN_QUEUE = "chaos-plain"
# Every job and fan-out sets this event to its result before returning it.
RESULT_EVENT = "result"


def _number(env: Mapping[str, str], name: str, default: float, *, integer: bool, minimum: float) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return int(default) if integer else default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class AppSettings:
    """The built-in app's tunables, read from the environment of each worker.

    The defaults are what a chaos run uses: a step takes long enough (0.2 s) and a durable
    sleep (1 s) lasts long enough that a fault lands in the middle of many workflows, and the
    limited queue's limits (6 fleet-wide, 2 per worker, 8 starts per 2 s) bind with 3 nodes of
    2 workers: 6 executors could run 12 at once; a single claimer could take all 6 free slots
    but for the per-worker 2; and a wave's burst of jobs meets the rate limit as it lands."""

    step_seconds: float = 0.2  # PGFLEET_CHAOS_STEP_SECONDS: how long each step body takes
    sleep_seconds: float = 1.0  # PGFLEET_CHAOS_SLEEP_SECONDS: each job's durable sleep
    concurrency: int = 6  # PGFLEET_CHAOS_CONCURRENCY: the limited queue, fleet-wide
    worker_concurrency: int = 2  # PGFLEET_CHAOS_WORKER_CONCURRENCY: the limited queue, per worker
    rate_limit: int = 8  # PGFLEET_CHAOS_RATE_LIMIT: starts on the limited queue per period ...
    rate_period_sec: float = 2.0  # PGFLEET_CHAOS_RATE_PERIOD: ... of this many seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AppSettings:
        """The settings of ``env`` (default: ``os.environ``); a bad value raises ValueError
        naming the variable."""
        env = os.environ if env is None else env
        d = cls()
        settings = cls(
            step_seconds=_number(env, "PGFLEET_CHAOS_STEP_SECONDS", d.step_seconds, integer=False, minimum=0),
            sleep_seconds=_number(env, "PGFLEET_CHAOS_SLEEP_SECONDS", d.sleep_seconds, integer=False, minimum=0),
            concurrency=_number(env, "PGFLEET_CHAOS_CONCURRENCY", d.concurrency, integer=True, minimum=1),
            worker_concurrency=_number(env, "PGFLEET_CHAOS_WORKER_CONCURRENCY", d.worker_concurrency, integer=True, minimum=1),
            rate_limit=_number(env, "PGFLEET_CHAOS_RATE_LIMIT", d.rate_limit, integer=True, minimum=1),
            rate_period_sec=_number(env, "PGFLEET_CHAOS_RATE_PERIOD", d.rate_period_sec, integer=False, minimum=0.001),
        )
        if settings.worker_concurrency > settings.concurrency:
            raise ValueError(
                f"PGFLEET_CHAOS_WORKER_CONCURRENCY ({settings.worker_concurrency}) must not exceed "
                f"PGFLEET_CHAOS_CONCURRENCY ({settings.concurrency})"
            )
        return settings


# -- the outputs: what each workflow returns, from its inputs only ----------------------------


def step_output(n: int, k: int) -> int:
    """What step ``k`` of the workflow with input ``n`` returns."""
    return n * 10 + k


def child_output(n: int) -> int:
    """``chaos_child(n)``: one step, plus one."""
    return step_output(n, 5) + 1


def job_output(n: int) -> dict[str, int]:
    """``chaos_job(n)``: a step, a child workflow, a durable sleep, a step (also its event)."""
    return {"n": n, "a": step_output(n, 1), "child": child_output(n), "b": step_output(n, 2)}


def fanout_job_inputs(n: int, width: int) -> tuple[list[int], int]:
    """The inputs of the jobs ``chaos_fanout(n, width)`` starts: ``width`` direct ones, and
    the one it enqueues on the limited queue."""
    return [n * 100 + i for i in range(width)], n * 100 + width


def fanout_output(n: int, width: int) -> dict[str, Any]:
    """``chaos_fanout(n, width)``: its direct jobs' results, its queued job's, and a step."""
    direct, queued = fanout_job_inputs(n, width)
    return {"n": n, "first": step_output(n, 0), "jobs": [job_output(m) for m in direct], "queued": job_output(queued)}


def child_id(parent_id: str) -> str:
    """The id a job gives its child workflow."""
    return f"{parent_id}-child"


def direct_job_id(parent_id: str, i: int) -> str:
    """The id a fan-out gives its ``i``-th direct job."""
    return f"{parent_id}-d{i}"


def queued_job_id(parent_id: str) -> str:
    """The id a fan-out gives the job it enqueues."""
    return f"{parent_id}-q"
