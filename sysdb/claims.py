"""Claims: taking queued work under the queues' limits, the leader's release of due delayed work,
the queues' counts and declared limits, and the NOTIFY wake-ups of claimers and assignees.

A claim is a per-queue advisory lock (bounded wait) around one count-and-claim statement, in one
transaction on a pooled connection: limits hold with any number of claimers, nobody errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from .channels import ASSIGNMENT_PAYLOAD_PREFIX, QUEUE_CHANNEL
from .door import Door, row_to
from .logs import get_logger
from .workflow_rows import AcquiredWorkflow

if TYPE_CHECKING:
    from .database import DictConnection, Row

__all__ = [
    "Claims",
    "ClaimRequest",
    "MethodBindings",
    "QueueDiscovery",
    "QueueDefinition",
    "QueueCounts",
    "CLAIM_LOCK_WAIT_MS",
    "assigned_member",
]

log = get_logger("pgfleet.sysdb")

# How long a claimer waits for a queue's claim lock before moving on to its other queues
# (a healthy claim holds it for milliseconds).
CLAIM_LOCK_WAIT_MS = 1000


@dataclass(frozen=True)
class MethodBindings:
    """What a process can bind a queued method workflow to. A classmethod runs only where its
    row's class is registered, an instance method only where its row's configured instance is:
    a claim never takes one that the claimer would have to leave PENDING, holding a concurrency
    slot, until someone notices (an executor that has it claims it instead)."""

    instances: Sequence[tuple[str, str]] = ()  # (class name, config name) of configured instances
    instance_methods: Sequence[str] = ()  # workflow names of instance methods
    class_methods: Sequence[str] = ()  # workflow names of classmethods
    classes: Sequence[str] = ()  # registered class names


@dataclass(frozen=True)
class ClaimRequest:
    """One claim from one queue (and partition) for one member, under the queue's limits."""

    queue_name: str
    partition_key: str | None
    executor_id: str
    member_epoch: int | None  # the claim is fenced on this incarnation being active
    application_version: str
    workflow_names: Sequence[str]  # only workflows this process can run
    max_claim: int
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit: tuple[int, float] | None  # (starts, per seconds)
    # A database-backed queue: its limits are read from its dbos.queues row inside the claim
    # (the three above are ignored).
    database_backed: bool = False
    bindings: MethodBindings = MethodBindings()


@dataclass(frozen=True)
class QueueDiscovery:
    """What an idle probe also looks for: database-backed queues of ``application_name`` (or
    unclaimed; None: any) with work, among ``served_names`` (None: all), not in ``known_names``."""

    application_name: str | None
    served_names: Sequence[str] | None
    known_names: Sequence[str]


@dataclass(frozen=True)
class QueueDefinition:
    """A queue's limits as the live members declared them in code (the freshest one's view)."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit_max: int | None
    rate_limit_period_sec: float | None
    priority_enabled: bool
    partition_queue: bool


@dataclass(frozen=True)
class QueueCounts:
    """How many workflows of a queue wait (ENQUEUED, DELAYED) and run (PENDING)."""

    queue_name: str
    enqueued: int
    delayed: int
    running: int


def assigned_member(payload: str) -> str | None:
    """The executor a queue-channel payload names as given work by a takeover, else None (the
    payload names a queue, or is empty: every queue)."""
    if payload.startswith(ASSIGNMENT_PAYLOAD_PREFIX):
        return payload[len(ASSIGNMENT_PAYLOAD_PREFIX):]
    return None


class Claims(Door):
    """Claiming queued work, queue counts and limits, and queue wake-ups."""

    def queues_with_work(self, queue_names: Sequence[str], discovery: QueueDiscovery | None = None) -> set[str]:
        """Which of these queues have work that can start now (one cheap probe per idle poll);
        with ``discovery``, also the unknown database-backed queues that have work."""
        params: dict[str, object] = {
            "queue_names": list(queue_names),
            "discover": discovery is not None,
            "known_names": list(discovery.known_names) if discovery else [],
            "served_names": None if discovery is None or discovery.served_names is None else list(discovery.served_names),
            "application_name": discovery.application_name if discovery else None,
        }
        rows = self._execute("list_queues_with_work", params)
        return {row["queue_name"] for row in rows}

    def partitions_with_work(self, queue_name: str) -> list[str]:
        """The partition keys of a partitioned queue that have work waiting."""
        return [row["queue_partition_key"] for row in self._execute("list_queue_partitions", {"queue_name": queue_name})]

    def claim(self, request: ClaimRequest) -> list[AcquiredWorkflow]:
        """Claim up to the queue's free budget for one executor (see the two statements); a
        queue whose claim lock stays busy past :data:`CLAIM_LOCK_WAIT_MS` yields nothing."""
        params = _claim_params(request)

        def run() -> list[Row]:
            with self._db.pooled() as conn, conn.transaction():
                self.lock_queue(conn, request.queue_name, request.partition_key)
                return self._db._execute_on(conn, "claim_queued_workflows", params)

        try:
            rows = self._db.with_retries(run)
        except psycopg.errors.LockNotAvailable:
            # Another session holds the queue's claim lock past any healthy claim: claim
            # nothing from it this pass rather than stop with it.
            log.warning("queue claim lock busy; skipping the queue this pass", queue=request.queue_name)
            return []
        return [row_to(AcquiredWorkflow, row) for row in rows]

    def lock_queue(
        self, conn: DictConnection, queue_name: str, partition_key: str | None, *, wait_ms: int = CLAIM_LOCK_WAIT_MS
    ) -> None:
        """Serialise the claimers of one queue (and partition) for the rest of ``conn``'s
        transaction, waiting at most ``wait_ms`` (0: no bound) for the lock."""
        lock_key = f"{queue_name}/{partition_key or ''}"
        self._db._execute_on(conn, "lock_queue_for_claim", {"lock_key": lock_key, "lock_timeout": str(wait_ms)})

    def definitions(self) -> list[QueueDefinition]:
        """The limits of every queue a live member declares."""
        return [row_to(QueueDefinition, row) for row in self._execute("list_queue_definitions")]

    def counts(self) -> list[QueueCounts]:
        """Per queue with work: how many wait and how many run."""
        return [row_to(QueueCounts, row) for row in self._execute("fleet_queue_counts")]

    # -- wake-ups (NOTIFY: a latency hint, never the source of truth) ---------------------------

    def wake_queue(self, queue_name: str) -> None:
        """Wake the claimers of ``queue_name`` (an enqueue, a freed slot, work handed back)."""
        self._db.notify(QUEUE_CHANNEL, queue_name)

    def wake_every_queue(self) -> None:
        """Wake every claimer for every queue (and a listener blocked in its wait)."""
        self._db.notify(QUEUE_CHANNEL, "")

    def wake_member(self, executor_id: str) -> None:
        """Wake the assignment poller of a member a takeover gave workflows to."""
        self._db.notify(QUEUE_CHANNEL, ASSIGNMENT_PAYLOAD_PREFIX + executor_id)


def _claim_params(request: ClaimRequest) -> dict[str, object]:
    rate_limit = request.rate_limit
    return {
        "queue_name": request.queue_name,
        "partition_key": request.partition_key,
        "executor_id": request.executor_id,
        "member_epoch": request.member_epoch,
        "application_version": request.application_version,
        "workflow_names": list(request.workflow_names),
        "instance_classes": [c for c, _ in request.bindings.instances],
        "instance_configs": [n for _, n in request.bindings.instances],
        "instance_methods": list(request.bindings.instance_methods),
        "class_methods": list(request.bindings.class_methods),
        "classes": list(request.bindings.classes),
        "max_claim": request.max_claim,
        "concurrency": request.concurrency,
        "worker_concurrency": request.worker_concurrency,
        "limiter_limit": rate_limit[0] if rate_limit else None,
        "limiter_period_ms": int(rate_limit[1] * 1000) if rate_limit else 0,
        "database_backed": request.database_backed,
    }
