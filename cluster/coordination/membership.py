"""Membership: this process's row in ``dbos.pgfleet_executors``, and the heartbeat that keeps it.

A member registers with a new epoch at every start. It heartbeats every
``heartbeat_interval_sec`` on its own session, on the database clock; a member silent for
``member_timeout_sec`` is declared dead by the leader and its workflows are taken over.

A member that learns it was declared dead, or whose heartbeats have failed for longer than the
timeout minus a margin, must stop executing at once (the others are about to take its work):
:class:`Heartbeat` calls ``on_lost`` and then keeps trying to register again with a new epoch,
calling ``on_rejoined`` when it has.

The same bound is a lease that workflows check locally before every step body and write
(:meth:`Heartbeat.lease_valid`): it runs from the moment the last acknowledged heartbeat was
*sent* (the database stamped it no earlier), so a reply that arrives late extends nothing, and
a member paused between two steps starts no body once it may have been declared dead.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sysdb import SystemDatabase
from sysdb.logs import get_logger
from sysdb.members import MemberStatus, Registration
from sysdb.session import DedicatedSession

from .service import BackgroundService

__all__ = ["MemberInfo", "Membership", "Heartbeat", "ExecutorIdInUseError"]

log = get_logger("pgfleet.cluster")


class ExecutorIdInUseError(Exception):
    """Another live process is registered under this executor id."""


@dataclass(frozen=True)
class MemberInfo:
    """What a member says about itself when it registers."""

    executor_id: str
    application_name: str
    application_version: str
    queues: tuple[str, ...] | None
    supervisor_id: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Membership:
    """Registers this process and remembers its current epoch."""

    def __init__(
        self,
        db: SystemDatabase,
        info: MemberInfo,
        workflow_names: Callable[[], list[str]],
        member_timeout_sec: float,
        queue_limits: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self._db = db
        self.info = info
        self._workflow_names = workflow_names
        self._queue_limits = queue_limits
        self.member_timeout_sec = member_timeout_sec
        self.epoch: int | None = None

    @property
    def executor_id(self) -> str:
        return self.info.executor_id

    def register(self) -> int:
        """Register (again) with a new epoch. Raises :class:`ExecutorIdInUseError` when a live
        process elsewhere holds this executor id."""
        info = self.info
        members = self._db.members
        current = members.get(info.executor_id, member_timeout_sec=self.member_timeout_sec)
        # On this host we can tell a dead process from a live one: a restarted program
        # replaces its own killed predecessor at once instead of waiting out the timeout.
        replace_epoch = None
        if current is not None and current.host == info.host and (current.pid == info.pid or not _pid_alive(current.pid)):
            replace_epoch = current.epoch
        epoch = members.register(
            Registration(
                executor_id=info.executor_id,
                epoch=members.draw_epoch(),
                host=info.host,
                pid=info.pid,
                supervisor_id=info.supervisor_id,
                application_name=info.application_name,
                application_version=info.application_version,
                queues=info.queues,
                # The limits of the queues it declares, so `pgfleet status` can show them.
                queue_limits=self._queue_limits() if self._queue_limits else None,
                workflow_names=self._workflow_names(),
                member_timeout_sec=self.member_timeout_sec,
                replace_epoch=replace_epoch,
            )
        )
        if epoch is None:
            raise ExecutorIdInUseError(
                f"executor id {info.executor_id!r} is in use by a live process (pid {current.pid if current else None} on host "
                f"{current.host if current else None!r}); give this process its own executor_id"
            )
        self.epoch = epoch
        log.info(
            "executor registered", executor_id=info.executor_id, epoch=self.epoch,
            application_name=info.application_name, application_version=info.application_version,
        )
        return epoch

    def set_status(self, status: MemberStatus) -> bool:
        """Announce ``leaving`` (draining) or ``dead`` (handing work over now)."""
        if self.epoch is None:
            return False
        return self._db.members.set_status(self.executor_id, self.epoch, status)


class Heartbeat(BackgroundService):
    """Beats for a member on a dedicated session; detects being declared dead or cut off."""

    def __init__(
        self,
        db: SystemDatabase,
        membership: Membership,
        interval_sec: float,
        on_lost: Callable[[str], None],
        on_rejoined: Callable[[int], None],
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock`` (monotonic seconds) times the lease; by default the database's
        ``coordination_clock``, which also gives the liveness statements their "now"."""
        super().__init__("pgfleet-heartbeat", interval_sec)
        self.MAX_BACKOFF_SEC = interval_sec  # a failed pass must not delay the next beat
        self._membership = membership
        # A heartbeat over a dead link must fail, not hang in TCP retransmission, so that a
        # cut-off member notices quickly (the watchdog below covers the rest).
        self._db_clock = db.clock
        self._session = DedicatedSession(
            db, purpose="heartbeat", dead_link_timeout_sec=membership.member_timeout_sec / 3
        )
        self._members = db.members.on(self._session)
        self._on_lost = on_lost
        self._on_rejoined = on_rejoined
        self._clock = clock if clock is not None else db.coordination_clock.monotonic
        # When the last acknowledged heartbeat (or the registration) was sent, on our monotonic
        # clock: the lease and the silence watchdog both count from the send, never the reply.
        self._last_ok = self._clock()
        # The valid leader lease the last acknowledged heartbeat saw: (holder, until when on our
        # clock, counted from the send so that it errs early), or None.
        self._lease_seen: tuple[str, float] | None = None
        self.lost = False
        self._lose_lock = threading.Lock()
        # Set once this member has handed its work over (it is leaving for good): it must never
        # rejoin and recover what it just gave away.
        self.retired = False
        # The watchdog fences this member even while a heartbeat statement hangs: silence is
        # measured on our own clock, not by waiting for the database to answer.
        self._watchdog = threading.Thread(target=self._watch, name="pgfleet-heartbeat-watchdog", daemon=True)

    @property
    def fence_after_sec(self) -> float:
        """How long heartbeats may fail before this member stops executing: the member timeout
        less a margin of one interval, so it stops before anyone can declare it dead."""
        return max(self.interval_sec, self._membership.member_timeout_sec - self.interval_sec)

    def seconds_since_success(self) -> float:
        """How long ago the last acknowledged heartbeat was sent (for the heartbeat-age metric)."""
        return self._clock() - self._last_ok

    def lease_seen(self) -> tuple[str, float] | None:
        """Who held a valid leader lease at the last acknowledged heartbeat, and until when it
        is valid at least, on this process's clock (a follower's elector needs no read of its own
        before then)."""
        return self._lease_seen

    def lease_valid(self) -> bool:
        """Whether this member may still start a step body or write: the last acknowledged
        heartbeat was sent less than ``fence_after_sec`` (member timeout less one interval)
        ago, and membership was not lost. A local check, no round trip. An expired lease loses
        membership at once (as the watchdog would), so the abandoned work is recovered when
        this member rejoins."""
        if self.lost:
            return False
        if self._clock() - self._last_ok <= self.fence_after_sec:
            return True
        self.check_silence()
        return False

    def start(self) -> None:
        super().start()
        self._watchdog.start()

    def stop(self) -> None:
        super().stop()
        if self._watchdog.is_alive():
            self._watchdog.join(5)
        self._session.close()

    def retire(self) -> None:
        """Never rejoin from now on (called before a leaving member hands its work over)."""
        self.retired = True

    def run_once(self) -> None:
        if not self.retired:
            self.beat_once()

    def beat_once(self) -> bool:
        """One heartbeat (or, after losing membership, one attempt to rejoin). True if alive."""
        if self.lost:
            return self._try_rejoin()
        sent_at = self._clock()
        try:
            sent = self._db_clock.monotonic()
            beat = self._members.heartbeat(
                self._membership.executor_id, self._membership.epoch, self._membership._workflow_names()
            )
        except Exception as exc:
            log.warning("heartbeat failed", error=str(exc), silent_for=round(self._clock() - self._last_ok, 2))
            self.check_silence()
            return False
        if self.lost:  # the watchdog gave up on us while this statement was in flight
            return False
        if beat is None:
            self._lose("declared dead by the cluster")
            return False
        self._last_ok = max(self._last_ok, sent_at)
        holder, remaining = beat.leader_executor_id, beat.leader_remaining_sec
        self._lease_seen = (holder, sent_at + remaining) if holder is not None and remaining is not None else None
        # Each heartbeat also measures the database clock, which local deadline checks use.
        self._db_clock.observe(beat.db_now_ms, sent, self._db_clock.monotonic())
        return True

    def check_silence(self) -> None:
        """Stop executing once heartbeats have failed for longer than ``fence_after_sec``."""
        silent_for = self._clock() - self._last_ok
        if not self.lost and silent_for > self.fence_after_sec:
            self._lose(f"no successful heartbeat for {silent_for:.1f}s")

    def _lose(self, reason: str) -> None:
        with self._lose_lock:
            if self.lost:
                return
            self.lost = True
        log.error("executor lost its membership: stopping its workflows", reason=reason, executor_id=self._membership.executor_id)
        self._on_lost(reason)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_sec / 2):
            try:
                self.check_silence()
            except Exception:  # the watchdog must outlive a failing on_lost callback
                log.exception("heartbeat watchdog check failed")

    def _try_rejoin(self) -> bool:
        if self.retired:
            return False
        sent_at = self._clock()
        try:
            epoch = self._membership.register()
        except Exception as exc:
            log.warning("cannot rejoin the cluster yet", error=str(exc))
            return False
        self._last_ok = sent_at
        self.lost = False
        try:
            self._on_rejoined(epoch)
        except BaseException:
            # A rejoin counts once its callback has run (it lists and resumes this member's
            # work): until then, stay lost and try the whole rejoin again on the next beat.
            self.lost = True
            raise
        return True
