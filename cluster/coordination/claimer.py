"""Claiming queue work: the claimer loop, its LISTEN/NOTIFY wake-ups, and throttled notifies.

Every executor runs one :class:`QueueClaimer`. It claims from each queue it serves with
``db.claims.claim`` (a per-queue advisory lock around one
count-and-claim statement, so limits hold with any number of claimers and nobody errors), then
hands the claimed rows to a callback that runs them. It wakes when a :class:`QueueListener`
hears a NOTIFY (an enqueue, or a finished queued workflow that freed a slot) and otherwise polls
on a jittered interval: LISTEN/NOTIFY is a latency hint, never the source of truth.

This module knows queues only as settings; running a workflow is the callback's business.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sysdb import SystemDatabase
from sysdb.channels import QUEUE_CHANNEL
from sysdb.claims import ClaimRequest, MethodBindings, QueueDiscovery
from sysdb.listener import NotificationConnection
from sysdb.logs import get_logger
from sysdb.workflow_rows import AcquiredWorkflow

from .service import BackgroundService

__all__ = ["QueueSpec", "QueueClaimer", "QueueListener", "ThrottledNotifier"]

log = get_logger("pgfleet.cluster")


@dataclass(frozen=True)
class QueueSpec:
    """A queue's limits as the claimer needs them."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    rate_limit: tuple[int, float] | None
    partitioned: bool
    polling_interval_sec: float
    priority_enabled: bool = False
    # Registered in the database (DBOS.register_queue): the claim reads the limits from its row,
    # so those above are only what the last refresh saw.
    database_backed: bool = False


class QueueClaimer(BackgroundService):
    """Claims queued workflows for this executor and hands them to ``run_claimed``.

    Each queue is polled at its own ``polling_interval_sec`` (jittered); a wake-up for a queue
    (a NOTIFY naming it, or local work) claims from it at once.
    """

    # Most workflows claimed from one queue in one pass (the rest wait for the next pass).
    MAX_CLAIM_PER_PASS = 100
    # The poll backstop is the queue's polling interval times a random factor in this range,
    # so a fleet's claimers do not poll in lockstep.
    POLL_JITTER = (0.8, 1.2)
    # While paused (membership lost), check again this often.
    PAUSED_WAIT_SEC = 1.0

    def __init__(
        self,
        db: SystemDatabase,
        executor_id: str,
        application_version: str,
        queues: Callable[[], list[QueueSpec]],
        workflow_names: Callable[[], list[str]],
        run_claimed: Callable[[list[AcquiredWorkflow]], None],
        *,
        member_epoch: Callable[[], int | None],
        bindings: Callable[[], MethodBindings] = MethodBindings,
        clock: Callable[[], float] = time.monotonic,
        capacity: Callable[[], int] | None = None,
        track: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
        discovery: Callable[[], QueueDiscovery | None] = lambda: None,
        on_discovered: Callable[[set[str]], None] = lambda _names: None,
    ) -> None:
        super().__init__("pgfleet-claimer", self.PAUSED_WAIT_SEC)
        self._db = db
        self._executor_id = executor_id
        self._application_version = application_version
        self._queues = queues
        self._workflow_names = workflow_names
        self._run_claimed = run_claimed
        # This member's current epoch: every claim is fenced on it in SQL, so a member that was
        # declared dead (or replaced) claims nothing even before its heartbeat notices.
        self._member_epoch = member_epoch
        # The classes and configured instances here: queued methods bound to others are left
        # for an executor that has them.
        self._bindings = bindings
        self._clock = clock
        # How many more workflows this executor can run now: it never claims more than that.
        self._capacity = capacity
        # Brackets each claim until its rows are handed over, so the orphan sweep (which adopts
        # the rows of a claim whose reply was lost) never takes rows of a claim still running.
        self._track = track
        # Each idle probe also names database-backed queues with work that this claimer does
        # not know yet (a registration elsewhere): ``on_discovered`` gets their names.
        self._discovery = discovery
        self._on_discovered = on_discovered
        self._next_poll: dict[str, float] = {}
        self._woken: set[str | None] = set()
        self._lock = threading.Lock()
        self.paused = threading.Event()  # set while this executor must not take work

    def wait_first(self) -> bool:
        return False

    def wake(self, queue_name: str | None = None) -> None:
        """Claim from ``queue_name`` (every queue when None) now, not at its next poll."""
        with self._lock:
            self._woken.add(queue_name)
        self._wake.set()

    def _due(self, specs: list[QueueSpec]) -> list[QueueSpec]:
        now = self._clock()
        with self._lock:
            woken, self._woken = self._woken, set()
        due = [s for s in specs if None in woken or s.name in woken or now >= self._next_poll.get(s.name, 0.0)]
        if due:
            # Poll queues that are nearly due in the same pass: one probe instead of several
            # staggered ones keeps an idle executor's statement count down.
            early = [s for s in specs if s not in due and self._next_poll.get(s.name, 0.0) - now < s.polling_interval_sec / 2]
            due += early
        for spec in due:
            self._next_poll[spec.name] = now + spec.polling_interval_sec * random.uniform(*self.POLL_JITTER)
        return due

    def claim_once(self, specs: list[QueueSpec] | None = None) -> int:
        """One pass over the given queues (all served ones by default); returns how many
        workflows were claimed."""
        specs = self._queues() if specs is None else specs
        if not specs:
            return 0
        names = self._workflow_names()
        bindings = self._bindings()
        discovery = self._discovery()
        waiting = self._db.claims.queues_with_work([s.name for s in specs], discovery)
        if discovery is not None:
            unknown = waiting - set(discovery.known_names)
            if unknown:
                self._on_discovered(unknown)
        claimed = 0
        for spec in specs:
            if spec.name not in waiting:
                continue
            partitions: list[str | None] = [None]
            if spec.partitioned:
                partitions = list(self._db.claims.partitions_with_work(spec.name))
            for partition in partitions:
                room = self._room()
                if room <= 0:
                    return claimed  # every thread is busy: a finishing workflow wakes the claimer
                with self._track():
                    claimed += self._claim_and_run(spec, partition, names, bindings, room)
        return claimed

    def _claim_and_run(
        self, spec: QueueSpec, partition: str | None, names: list[str], bindings: MethodBindings, room: int
    ) -> int:
        rows = self._db.claims.claim(
            ClaimRequest(
                queue_name=spec.name,
                partition_key=partition,
                executor_id=self._executor_id,
                member_epoch=self._member_epoch(),
                application_version=self._application_version,
                workflow_names=names,
                max_claim=room,
                concurrency=spec.concurrency,
                worker_concurrency=spec.worker_concurrency,
                rate_limit=spec.rate_limit,
                database_backed=spec.database_backed,
                bindings=bindings,
            )
        )
        if rows:
            self._run_claimed(rows)
        return len(rows)

    def _room(self) -> int:
        if self._capacity is None:
            return self.MAX_CLAIM_PER_PASS
        return min(self.MAX_CLAIM_PER_PASS, self._capacity())

    def run_once(self) -> float:
        """One pass of the loop: claim from the due queues; returns how long to wait."""
        if self.paused.is_set():
            return self.PAUSED_WAIT_SEC
        specs = self._queues()
        due = self._due(specs)
        # A failed pass is retried after the service's backoff (woken queues at once).
        claimed = self.claim_once(due) if due else 0
        if claimed:
            self.wake(None)  # there may be more: claim again at once
            return 0.0
        next_poll = min((self._next_poll.get(s.name, 0.0) for s in specs), default=self._clock() + 1.0)
        return max(0.0, next_poll - self._clock())


class QueueListener(BackgroundService):
    """LISTENs on a dedicated connection and reports every NOTIFY as ``(channel, payload)``.

    A listener connection can die silently; it is checked with ``pg_listening_channels()``
    every ``CHECK_INTERVAL_SEC`` and re-opened (with backoff) when it is gone.
    """

    CHECK_INTERVAL_SEC = 15.0
    # Longest single wait for notifications before checking the stop flag again.
    WAIT_SEC = 1.0
    RECONNECT_BACKOFF_SEC = (0.1, 5.0)

    def __init__(
        self, db: SystemDatabase, on_notify: Callable[[str, str], None], channels: tuple[str, ...] = (QUEUE_CHANNEL,)
    ) -> None:
        super().__init__("pgfleet-listener", self.RECONNECT_BACKOFF_SEC[0])
        self.FIRST_BACKOFF_SEC, self.MAX_BACKOFF_SEC = self.RECONNECT_BACKOFF_SEC
        self._db = db
        self._on_notify = on_notify
        self._channels = channels
        self._listener: NotificationConnection | None = None
        self.connected = threading.Event()

    def wait_first(self) -> bool:
        return False

    def stop(self) -> None:
        self._stop.set()
        if self.connected.is_set():
            try:  # wake the blocked wait at once rather than at its next timeout
                self._db.claims.wake_every_queue()
            except Exception:  # the database is gone: the wait times out by itself
                pass
        super().stop()

    def run_once(self) -> float:
        """Connect and listen until stopped or the connection fails (then the service backs
        off, doubling, and reconnects)."""
        try:
            self._listener = self._db.listen(*self._channels)
            self.connected.set()
            self.failures = 0  # connected again: the next loss backs off from the start
            self._listen(self._listener)
            return 0.0
        except Exception:
            self.connected.clear()
            if self._stop.is_set():
                return 0.0  # closed by stop(): nothing to report
            # Something may have been missed while the link was down: claim now (a failing
            # callback must not hide the lost connection, which the service logs).
            try:
                self._on_notify(QUEUE_CHANNEL, "")
            except Exception:
                log.exception("queue listener callback failed")
            raise
        finally:
            if self._listener is not None:
                try:
                    self._listener.close()
                except Exception:
                    pass
            self._listener = None

    def _listen(self, listener: NotificationConnection) -> None:
        last_check = time.monotonic()
        while not self._stop.is_set():
            for channel, payload in listener.notifications(timeout_sec=self.WAIT_SEC):
                if self._stop.is_set():
                    return
                self._on_notify(channel, payload)
            if time.monotonic() - last_check >= self.CHECK_INTERVAL_SEC:
                if not listener.is_listening():
                    raise ConnectionError("the LISTEN subscription is gone")
                last_check = time.monotonic()


class ThrottledNotifier:
    """Sends NOTIFY for a queue at most once per ``MIN_INTERVAL_SEC`` (NOTIFY takes a global
    lock at commit), and never drops the last one: a notify that falls inside the window is
    sent when the window ends. The window is short: it only has to stop a burst of enqueues
    from becoming a burst of NOTIFYs, and every millisecond of it is wake-up latency."""

    MIN_INTERVAL_SEC = 0.01

    def __init__(self, db: SystemDatabase) -> None:
        self._db = db
        self._last: dict[str, float] = {}
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def notify(self, queue_name: str) -> None:
        now = time.monotonic()
        with self._lock:
            if queue_name in self._pending:
                return
            wait = self._last.get(queue_name, 0.0) + self.MIN_INTERVAL_SEC - now
            if wait > 0:
                self._pending.add(queue_name)
                timer = threading.Timer(wait, self._send_pending, args=(queue_name,))
                timer.daemon = True
                timer.start()
                return
            self._last[queue_name] = now
        self._send(queue_name)

    def _send_pending(self, queue_name: str) -> None:
        with self._lock:
            self._pending.discard(queue_name)
            self._last[queue_name] = time.monotonic()
        self._send(queue_name)

    def _send(self, queue_name: str) -> None:
        try:
            self._db.claims.wake_queue(queue_name)
        except Exception as exc:  # only a hint: the poll backstop still finds the work
            log.warning("queue notify failed", queue=queue_name, error=str(exc))
