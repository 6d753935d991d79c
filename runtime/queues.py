"""``Queue``: workflows run in the background under concurrency and rate limits.

A ``Queue(...)`` declared in code registers in :data:`runtime.registry.registry` (like a
decorator, it is part of the program); its settings are fixed. A database-backed queue
(``DBOS.register_queue``, or ``Queue(name, database_backed_queue=True)`` naming one) lives in
``dbos.queues``: its getters read the row and its setters change it, and every executor's
claims read its limits from the row, so a change holds fleet-wide from the next claim.
``Queue.enqueue`` writes an ENQUEUED (or DELAYED) row and wakes claimers (:mod:`runtime.enqueue`);
the claimers of every executor serving the queue (:mod:`cluster.coordination.claimer`) take
rows under the queue's limits and run them with :func:`runtime.recovery.run_claimed`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypedDict, TypeVar

from sysdb.queue_rows import INTERNAL_QUEUE_NAME, QueueRow, QueueSettingsChange

from .aio import AsyncWork, in_thread
from .enqueue import enqueue_call
from .errors import DBOSException
from .handles import WorkflowHandle, WorkflowHandleAsync
from .on_loop import warn_on_loop
from .registry import registry

if TYPE_CHECKING:
    from sysdb import SystemDatabase

# A workflow function's parameters and result, carried to the handle enqueue returns.
P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Queue", "QueueRateLimit", "QueueConflictResolution", "INTERNAL_QUEUE_NAME"]

DEFAULT_QUEUE_POLLING_INTERVAL_SEC = 1.0

# What DBOS.register_queue does when the queue is registered already.
QueueConflictResolution = Literal["update_if_latest_version", "always_update", "never_update"]


class QueueRateLimit(TypedDict):
    """At most ``limit`` workflow starts in any rolling window of ``period`` seconds."""

    limit: int
    period: float


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    concurrency: int | None
    limiter: QueueRateLimit | None
    worker_concurrency: int | None
    priority_enabled: bool
    partition_queue: bool
    polling_interval_sec: float


def _count(name: str, value: Any) -> int | None:
    """A concurrency: None (no limit) or an int >= 0 (0 pauses the queue)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise DBOSException(f"{name} must be a non-negative integer, got {value!r}")
    return value


def check_limiter(limiter: Any) -> None:
    """DBOS's check of a rate limit, then pgfleet's of its values."""
    if limiter is None:
        return
    if not isinstance(limiter, dict) or limiter.get("limit") is None or limiter.get("period") is None:
        raise ValueError("limiter must specify both 'limit' and 'period'")
    _count("limiter['limit']", limiter["limit"])
    period = limiter["period"]
    if isinstance(period, bool) or not isinstance(period, (int, float)) or period <= 0:
        raise DBOSException(f"limiter['period'] must be a positive number of seconds, got {period!r}")


def check_polling_interval(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DBOSException(f"polling_interval_sec must be a number, got {value!r}")
    if value <= 0.0:
        raise ValueError("polling_interval_sec must be positive")


def check_queue_settings(concurrency: Any, worker_concurrency: Any, polling_interval_sec: Any, limiter: Any) -> None:
    """Validate a queue's settings as DBOS does (ValueError, DBOS's texts), plus the types."""
    _count("concurrency", concurrency)
    _count("worker_concurrency", worker_concurrency)
    if worker_concurrency is not None and concurrency is not None and worker_concurrency > concurrency:
        raise ValueError("concurrency must be greater than or equal to worker_concurrency")
    check_polling_interval(polling_interval_sec)
    check_limiter(limiter)


class Queue:
    """A named queue of workflows, shared by every executor that serves it.

    ``concurrency`` caps the queue's running workflows across the whole fleet;
    ``worker_concurrency`` caps them in each executor process; ``limiter`` is
    ``{"limit": n, "period": seconds}``: at most n starts in any rolling window, fleet-wide.
    With ``partition_queue`` the limits apply per ``queue_partition_key``. With
    ``database_backed_queue`` this object names a queue of ``dbos.queues`` (see
    ``DBOS.register_queue``; ``client_system_database`` is the database of a ``DBOSClient``).
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
        polling_interval_sec: float = DEFAULT_QUEUE_POLLING_INTERVAL_SEC,
        database_backed_queue: bool = False,
        client_system_database: SystemDatabase | None = None,
        application_name: str | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise DBOSException(f"a queue needs a non-empty name, got {name!r}")
        check_queue_settings(concurrency, worker_concurrency, polling_interval_sec, limiter)
        self.name = name
        self.database_backed_queue = database_backed_queue
        self.application_name = application_name  # the owner of a database-backed queue's row
        self._client_system_database = client_system_database
        self._settings = QueueSettings(
            concurrency, limiter, worker_concurrency, priority_enabled, partition_queue, float(polling_interval_sec)
        )
        if not database_backed_queue:  # a database-backed queue's truth is its row
            registry.add_queue(self)

    @classmethod
    def _from_row(cls, row: QueueRow, client_system_database: SystemDatabase | None = None) -> Queue:
        limiter: QueueRateLimit | None = None
        if row.rate_limit_max is not None:
            limiter = {"limit": row.rate_limit_max, "period": float(row.rate_limit_period_sec or 0.0)}
        return cls(
            row.name, row.concurrency, limiter, worker_concurrency=row.worker_concurrency,
            priority_enabled=row.priority_enabled, partition_queue=row.partition_queue,
            polling_interval_sec=row.polling_interval_sec, database_backed_queue=True,
            client_system_database=client_system_database, application_name=row.application_name,
        )

    # -- settings: fixed for a queue declared in code, its row's for a database-backed one ---

    def _db(self) -> SystemDatabase:
        if self._client_system_database is not None:
            return self._client_system_database
        from .current import executor_for  # the facade's current executor, at call time

        return executor_for(f"queue {self.name}").db

    def _current(self) -> QueueSettings:
        """The settings now: a database-backed queue's are read from its row (and cached)."""
        if self.database_backed_queue:
            row = self._db().queue_rows.get(self.name)
            if row is None:
                raise DBOSException(f"Queue {self.name} not found in the database")
            latest = Queue._from_row(row)
            self._settings, self.application_name = latest._settings, row.application_name
        return self._settings

    def _change(self, **fields: Any) -> None:
        """Write settings of a database-backed queue (DBOS: only those can change)."""
        if not self.database_backed_queue:
            raise DBOSException(
                f"Cannot configure queue {self.name}: dynamic configuration is "
                "only supported for queues registered via DBOS.register_queue."
            )
        changes: dict[str, Any] = {}
        for key, value in fields.items():
            changes[f"set_{key}"] = True
            if key == "limiter":
                changes["rate_limit_max"] = value["limit"] if value else None
                changes["rate_limit_period_sec"] = float(value["period"]) if value else None
            else:
                changes[key] = value
        self._db().queue_rows.update(QueueSettingsChange(name=self.name, **changes))
        self._settings = dataclasses.replace(self._settings, **fields)

    def _read(self, name: str) -> QueueSettings:
        """The settings for the getter ``name`` (DBOS warns when a row is read on a loop)."""
        if self.database_backed_queue:
            warn_on_loop(f"Queue.{name}", f"Queue.get_{name}_async")
        return self._current()

    def _warn_on_loop(self, setter: str) -> None:
        """DBOS's warning for a row written on a loop (a queue declared in code has none)."""
        if self.database_backed_queue:
            warn_on_loop(f"Queue.{setter}", f"Queue.{setter}_async")

    async def _read_async(self) -> QueueSettings:
        """The settings for asyncio code: a database-backed queue's row is read in a thread."""
        if not self.database_backed_queue:
            return self._settings
        return await in_thread(self._work(), self._current)

    async def _write_async(self, setter: Callable[[Any], None], value: Any) -> None:
        await in_thread(self._work(), setter, value)

    def _work(self) -> AsyncWork | None:
        """The worker threads of this queue's executor (None for a client's queue, or before a
        launch: the loop's default executor, and the sync setter raises what it raises)."""
        if self._client_system_database is not None:
            return None
        from .current import current_process

        process = current_process()
        return process.executor.async_work if process is not None and process.executor is not None else None

    def describe(self) -> str:
        """``Queue: <name> (<the settings that are set>)``, the line DBOS logs for a queue (at
        launch, and when one is registered), from the settings this object was made with."""
        settings = self._settings
        opts = []
        if settings.concurrency is not None:
            opts.append(f"concurrency={settings.concurrency}")
        if settings.worker_concurrency is not None:
            opts.append(f"worker_concurrency={settings.worker_concurrency}")
        if settings.limiter is not None:
            opts.append(f"limit={settings.limiter['limit']}/{settings.limiter['period']}s")
        if settings.priority_enabled:
            opts.append("priority")
        if settings.partition_queue:
            opts.append("partitioned")
        return f"Queue: {self.name}" + (f" ({', '.join(opts)})" if opts else "")

    @property
    def concurrency(self) -> int | None:
        return self._read("concurrency").concurrency

    async def get_concurrency_async(self) -> int | None:
        """``concurrency`` for asyncio code (a database-backed queue's row is read in a worker thread)."""
        return (await self._read_async()).concurrency

    def set_concurrency(self, value: int | None) -> None:
        """Cap the queue's running workflows fleet-wide (None: no cap) from the next claim."""
        self._warn_on_loop("set_concurrency")
        _count("concurrency", value)
        worker = self._current().worker_concurrency if self.database_backed_queue else None
        if value is not None and worker is not None and worker > value:
            raise ValueError("worker_concurrency must be less than or equal to concurrency")
        self._change(concurrency=value)

    async def set_concurrency_async(self, value: int | None) -> None:
        """``set_concurrency`` for asyncio code (the row is written in a worker thread)."""
        await self._write_async(self.set_concurrency, value)

    @property
    def worker_concurrency(self) -> int | None:
        return self._read("worker_concurrency").worker_concurrency

    async def get_worker_concurrency_async(self) -> int | None:
        """``worker_concurrency`` for asyncio code (a database-backed queue's row is read in a worker thread)."""
        return (await self._read_async()).worker_concurrency

    def set_worker_concurrency(self, value: int | None) -> None:
        """Cap the queue's running workflows per executor (None: no cap)."""
        self._warn_on_loop("set_worker_concurrency")
        _count("worker_concurrency", value)
        total = self._current().concurrency if self.database_backed_queue else None
        if value is not None and total is not None and value > total:
            raise ValueError("worker_concurrency must be less than or equal to concurrency")
        self._change(worker_concurrency=value)

    async def set_worker_concurrency_async(self, value: int | None) -> None:
        """``set_worker_concurrency`` for asyncio code (the row is written in a worker thread)."""
        await self._write_async(self.set_worker_concurrency, value)

    @property
    def limiter(self) -> QueueRateLimit | None:
        return self._read("limiter").limiter

    async def get_limiter_async(self) -> QueueRateLimit | None:
        """``limiter`` for asyncio code (a database-backed queue's row is read in a worker thread)."""
        return (await self._read_async()).limiter

    def set_limiter(self, value: QueueRateLimit | None) -> None:
        """At most ``value['limit']`` starts per ``value['period']`` seconds (None: no limit)."""
        check_limiter(value)
        self._warn_on_loop("set_limiter")
        self._change(limiter=value)

    async def set_limiter_async(self, value: QueueRateLimit | None) -> None:
        """``set_limiter`` for asyncio code (the row is written in a worker thread)."""
        await self._write_async(self.set_limiter, value)

    @property
    def priority_enabled(self) -> bool:
        return self._read("priority_enabled").priority_enabled

    async def get_priority_enabled_async(self) -> bool:
        """``priority_enabled`` for asyncio code (a database-backed queue's row is read in a worker thread)."""
        return (await self._read_async()).priority_enabled

    def set_priority_enabled(self, value: bool) -> None:
        self._warn_on_loop("set_priority_enabled")
        self._change(priority_enabled=bool(value))

    async def set_priority_enabled_async(self, value: bool) -> None:
        """``set_priority_enabled`` for asyncio code (the row is written in a worker thread)."""
        await self._write_async(self.set_priority_enabled, value)

    @property
    def partition_queue(self) -> bool:
        return self._read("partition_queue").partition_queue

    async def get_partition_queue_async(self) -> bool:
        """``partition_queue`` for asyncio code (a database-backed queue's row is read in a worker thread)."""
        return (await self._read_async()).partition_queue

    def set_partition_queue(self, value: bool) -> None:
        self._warn_on_loop("set_partition_queue")
        self._change(partition_queue=bool(value))

    async def set_partition_queue_async(self, value: bool) -> None:
        """``set_partition_queue`` for asyncio code (the row is written in a worker thread)."""
        await self._write_async(self.set_partition_queue, value)

    @property
    def polling_interval_sec(self) -> float:
        return self._read("polling_interval_sec").polling_interval_sec

    async def get_polling_interval_sec_async(self) -> float:
        """``polling_interval_sec`` for asyncio code (a database-backed queue's row is read in a worker thread)."""
        return (await self._read_async()).polling_interval_sec

    def set_polling_interval_sec(self, value: float) -> None:
        check_polling_interval(value)
        self._warn_on_loop("set_polling_interval_sec")
        self._change(polling_interval_sec=float(value))

    async def set_polling_interval_sec_async(self, value: float) -> None:
        """``set_polling_interval_sec`` for asyncio code (the row is written in a worker thread)."""
        await self._write_async(self.set_polling_interval_sec, value)

    @property
    def rate_limit(self) -> tuple[int, float] | None:
        """The limiter as ``(limit, period)`` (what the claimer needs)."""
        limiter = self._current().limiter
        return (limiter["limit"], float(limiter["period"])) if limiter else None

    # -- enqueueing ----------------------------------------------------------------------------

    def enqueue(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Put a workflow on this queue and return its handle at once.

        Inside a workflow this is a checkpointed operation: a replay returns the same handle.
        """
        self._require_dbos_bound()
        handle: WorkflowHandle[R] = enqueue_call(self, func, args, dict(kwargs))
        return handle

    def _require_dbos_bound(self) -> None:
        """A queue a DBOSClient returned enqueues through the client (DBOS's words)."""
        if self._client_system_database is not None:
            raise DBOSException(
                f"Cannot enqueue on queue {self.name} from a client-bound Queue object. Use DBOSClient.enqueue instead."
            )

    async def enqueue_async(
        self, func: Callable[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> WorkflowHandleAsync[R]:
        """``enqueue`` for asyncio code. The row is written in the executor's worker threads;
        inside a workflow the child's position (and a ``SetWorkflowID``) is taken on the loop,
        in call order. An async workflow runs on the claiming executor's background loop."""
        from .current import executor_for

        self._require_dbos_bound()
        work = executor_for(f"queue {self.name}").async_work
        handle: WorkflowHandle[Any] = await in_thread(work, functools.partial(enqueue_call, self, func, args, kwargs), positions=1)
        return WorkflowHandleAsync.of(handle)
