"""``Queue``: workflows run in the background under concurrency and rate limits.

Declaring a ``Queue`` registers it in :data:`runtime.registry.registry` (like a decorator, it is
part of the program). ``Queue.enqueue`` writes an ENQUEUED (or DELAYED) row and wakes claimers
(:mod:`runtime.enqueue`); the claimers of every executor serving the queue
(:mod:`cluster.coordination.claimer`) take rows under the queue's limits and run them with
:func:`runtime.recovery.run_claimed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypedDict, TypeVar

from .enqueue import enqueue_call
from .errors import DBOSException
from .handles import WorkflowHandle, WorkflowHandleAsync
from .registry import registry

# A workflow function's parameters and result, carried to the handle enqueue returns.
P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Queue", "QueueRateLimit", "INTERNAL_QUEUE_NAME"]

# DBOS's queue for resumed and forked workflows; every executor serves it.
INTERNAL_QUEUE_NAME = "_dbos_internal_queue"


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflow starts in any rolling window of ``period`` seconds."""

    limit: int
    period: float


@dataclass(frozen=True)
class QueueSettings:
    concurrency: int | None
    limiter: tuple[int, float] | None
    worker_concurrency: int | None
    priority_enabled: bool
    partition_queue: bool
    polling_interval_sec: float


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DBOSException(f"{name} must be a positive integer, got {value!r}")
    return value


class Queue:
    """A named queue of workflows, shared by every executor that declares it.

    ``concurrency`` caps the queue's running workflows across the whole fleet;
    ``worker_concurrency`` caps them in each executor process; ``limiter`` is
    ``{"limit": n, "period": seconds}``: at most n starts in any rolling window, fleet-wide.
    With ``partition_queue`` the limits apply per ``queue_partition_key``.
    """

    def __init__(
        self,
        name: str,
        concurrency: int | None = None,
        limiter: QueueRateLimit | None = None,
        *,
        worker_concurrency: int | None = None,
        priority_enabled: bool = False,
        partition_queue: bool = False,
        polling_interval_sec: float = 1.0,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise DBOSException(f"a queue needs a non-empty name, got {name!r}")
        concurrency = _positive_int("concurrency", concurrency)
        worker_concurrency = _positive_int("worker_concurrency", worker_concurrency)
        if concurrency is not None and worker_concurrency is not None and worker_concurrency > concurrency:
            raise DBOSException(
                f"queue {name!r}: worker_concurrency ({worker_concurrency}) exceeds concurrency ({concurrency})"
            )
        rate: tuple[int, float] | None = None
        if limiter is not None:
            if not isinstance(limiter, dict) or "limit" not in limiter or "period" not in limiter:
                raise DBOSException(f"queue {name!r}: limiter must be {{'limit': n, 'period': seconds}}, got {limiter!r}")
            limit = _positive_int("limiter['limit']", limiter["limit"])
            period = limiter["period"]
            if isinstance(period, bool) or not isinstance(period, (int, float)) or period <= 0:
                raise DBOSException(f"queue {name!r}: limiter['period'] must be a positive number of seconds, got {period!r}")
            assert limit is not None
            rate = (limit, float(period))
        if isinstance(polling_interval_sec, bool) or not isinstance(polling_interval_sec, (int, float)) or polling_interval_sec <= 0:
            raise DBOSException(f"queue {name!r}: polling_interval_sec must be positive, got {polling_interval_sec!r}")
        self.name = name
        self.concurrency = concurrency
        self.worker_concurrency = worker_concurrency
        self.limiter = limiter
        self.priority_enabled = priority_enabled
        self.partition_queue = partition_queue
        self.polling_interval_sec = float(polling_interval_sec)
        self.settings = QueueSettings(concurrency, rate, worker_concurrency, priority_enabled, partition_queue, float(polling_interval_sec))
        registry.add_queue(self)

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        return self.settings.limiter

    def enqueue(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Put a workflow on this queue and return its handle at once.

        Inside a workflow this is a checkpointed operation: a replay returns the same handle.
        """
        handle: WorkflowHandle[R] = enqueue_call(self, func, args, dict(kwargs))
        return handle

    async def enqueue_async(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandleAsync[R]:
        """``enqueue`` for asyncio code."""
        handle: WorkflowHandle[R] = await asyncio.to_thread(lambda: self.enqueue(func, *args, **kwargs))
        return WorkflowHandleAsync.of(handle)
