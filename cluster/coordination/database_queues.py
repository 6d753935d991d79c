"""Which database-backed queues (``dbos.queues``) an executor serves, refreshed now and then.

A queue registered in the database is served by every executor of its application (the
queues it owns and the unclaimed ones), except where the program declares a queue of the same
name in code (that one wins, as in DBOS). The claim itself reads the queue's limits from its
row, so this list only decides *which* queues to poll and how often: it is refreshed every
``REFRESH_SEC``, and sooner (at most every ``MIN_REFRESH_SEC``) when something names a queue
it does not know: the claimer's idle probe names database-backed queues with work it does not
know (:class:`sysdb.claims.QueueDiscovery`, no statement of its own), and so does a NOTIFY of
an enqueue or a registration in this process. The timer only catches changes of a known
queue's polling interval or partitioning, and deletions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sysdb import SystemDatabase
from sysdb.claims import QueueDiscovery
from sysdb.logs import get_logger
from sysdb.queue_rows import QueueRow

from .claimer import QueueSpec

__all__ = ["DatabaseQueues", "spec_of"]

log = get_logger("pgfleet.cluster")


def spec_of(row: QueueRow) -> QueueSpec:
    """The claimer's view of a database-backed queue."""
    rate = None
    if row.rate_limit_max is not None and row.rate_limit_period_sec is not None:
        rate = (row.rate_limit_max, float(row.rate_limit_period_sec))
    return QueueSpec(
        name=row.name,
        concurrency=row.concurrency,
        worker_concurrency=row.worker_concurrency,
        rate_limit=rate,
        partitioned=row.partition_queue,
        polling_interval_sec=row.polling_interval_sec,
        priority_enabled=row.priority_enabled,
        database_backed=True,
    )


class DatabaseQueues:
    """The database-backed queues this executor serves, from a cache refreshed on a timer."""

    REFRESH_SEC = 30.0
    MIN_REFRESH_SEC = 0.5

    def __init__(
        self,
        db: SystemDatabase,
        application_name: str | None,
        serves: Callable[[str], bool],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._application_name = application_name
        self._serves = serves  # the served-queues filter (config ``queues``, listen_queues)
        self._clock = clock
        self._specs: list[QueueSpec] = []
        self._refreshed_at: float | None = None
        self._stale = False
        # Unknown queue names a NOTIFY brought, and when: each one triggers at most one re-read
        # per REFRESH_SEC (a busy queue served elsewhere must not make this executor re-read).
        self._asked_about: dict[str, float] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        """Refresh at the next call (at most every ``MIN_REFRESH_SEC``)."""
        self._stale = True

    def discovery(self, known_names: list[str], served_names: tuple[str, ...] | None) -> QueueDiscovery:
        """What the claimer's idle probe should also look for."""
        return QueueDiscovery(self._application_name, served_names, known_names)

    def refresh_now(self) -> set[str]:
        """Re-read the queues at once (the probe found work on one we do not know); returns
        the names known afterwards."""
        with self._lock:
            self._refresh(self._clock())
            return {s.name for s in self._specs}

    def knows(self, queue_name: str) -> bool:
        return any(s.name == queue_name for s in self._specs)

    def heard_of(self, queue_name: str) -> None:
        """A NOTIFY named a queue: re-read soon if it is unknown and was not asked about lately."""
        if self.knows(queue_name):
            return
        now = self._clock()
        with self._lock:
            last = self._asked_about.get(queue_name)
            if last is not None and now - last < self.REFRESH_SEC:
                return
            if len(self._asked_about) > 1000:  # names of queues served elsewhere: forget old ones
                self._asked_about = {n: t for n, t in self._asked_about.items() if now - t < self.REFRESH_SEC}
            self._asked_about[queue_name] = now
            self._stale = True

    def specs(self, declared_in_code: set[str]) -> list[QueueSpec]:
        """The database-backed queues to serve, minus those the program declares in code."""
        with self._lock:
            now = self._clock()
            age = None if self._refreshed_at is None else now - self._refreshed_at
            if age is None or age >= self.REFRESH_SEC or (self._stale and age >= self.MIN_REFRESH_SEC):
                self._refresh(now)
            return [s for s in self._specs if s.name not in declared_in_code]

    def _refresh(self, now: float) -> None:
        self._refreshed_at, self._stale = now, False
        owners = [self._application_name] if self._application_name else None
        try:
            rows = self._db.queue_rows.list(owners)
        except Exception as exc:  # keep serving what we knew; the claimer's own errors back off
            log.warning("listing database-backed queues failed", error=str(exc))
            return
        self._specs = [spec_of(row) for row in rows if self._serves(row.name)]
