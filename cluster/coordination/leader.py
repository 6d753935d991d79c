"""Leader election: a Postgres advisory lock on a dedicated session, plus a lease with a term.

The lock alone is fragile (it vanishes silently with its connection and lingers on a
partitioned host until TCP gives up), so the leader also holds a lease row with a term drawn
from a sequence. A candidate holding the lock takes the lease only once the previous one has
expired. The leader renews the lease matching holder and term, trusts it only until
``attempt start + TTL - margin`` on its own monotonic clock, and concedes on any failed
renewal. Every leader action is itself fenced on the lease in SQL, so at most one leader acts
in any term. A candidate may end the backend of a leader whose lease expired but whose session
still holds the lock.

The renewal also declares silent members dead, in the same fenced statement (one round trip
per tick, and a leader that lost its lease declares nobody dead). It is sent only when one of
the two is due: the lease has little trust left, or a member can have died since the last look
(the statement says when the earliest member still counted alive can be). Idle ticks in between
send nothing; the duties still run at every tick, each on its own pace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sysdb import SystemDatabase
from sysdb.logs import get_logger
from sysdb.session import DedicatedSession
from sysdb.takeover import MemberIncarnation

from .service import BackgroundService

__all__ = ["LeaderElector"]

log = get_logger("pgfleet.cluster")


class LeaderElector(BackgroundService):
    """Campaigns for leadership and, while leader, calls ``on_tick(term, dead)`` every interval
    (``dead``: the members this tick's renewal declared dead)."""

    # Renew once at most this many intervals of trust are left: a tick that comes up to half an
    # interval late still renews in time, and the lease lasts one interval past the trust.
    RENEW_WITHIN_INTERVALS = 1.5

    def __init__(
        self,
        db: SystemDatabase,
        executor_id: str,
        executor_epoch: Callable[[], int | None],
        interval_sec: float,
        lease_ttl_sec: float,
        on_tick: Callable[[int, Sequence[MemberIncarnation]], None],
        clock: Callable[[], float] | None = None,
        *,
        member_timeout_sec: float | None = None,
        lease_seen: Callable[[], tuple[str, float] | None] | None = None,
    ) -> None:
        """``clock`` (monotonic seconds) times the trust in the lease; by default the database's
        ``coordination_clock``, which also gives the lease statements their "now".
        ``member_timeout_sec`` is the silence after which the renewal declares a member dead
        (by default the lease TTL, as an executor wires them). ``lease_seen`` tells who holds a
        valid lease and until when on ``clock`` (the member's heartbeat reads it anyway): while
        another member holds one, a follower sends no statement of its own."""
        super().__init__("pgfleet-leader", interval_sec)
        self.lease_ttl_sec = lease_ttl_sec
        self.member_timeout_sec = lease_ttl_sec if member_timeout_sec is None else member_timeout_sec
        self._executor_id = executor_id
        self._executor_epoch = executor_epoch
        self._on_tick = on_tick
        self._lease_seen = lease_seen
        self._clock = clock if clock is not None else db.coordination_clock.monotonic
        # A partitioned leader's session (and so its lock) must die within the lease TTL, not
        # hours later when TCP gives up.
        self._session = DedicatedSession(db, purpose="leader", dead_link_timeout_sec=max(1.0, lease_ttl_sec / 2))
        # The lock is a session lock: every leadership statement runs on that session.
        self._leadership = db.leadership.on(self._session)
        self.term: int | None = None
        self._trusted_until = 0.0
        # When a member can have died since the last look, on our clock (0: look at once).
        self._next_death_check = 0.0
        self._has_lock = False
        # A follower that saw a valid lease does not campaign before it can have expired.
        self._quiet_until = 0.0
        self.paused = threading.Event()  # set while this member must not lead (membership lost)

    @property
    def is_leader(self) -> bool:
        """True only while the lease is trusted on this process's own clock."""
        return self.term is not None and self._clock() < self._trusted_until

    def wait_first(self) -> bool:
        return False

    def run_once(self) -> None:
        self.tick()

    def stop(self) -> None:
        super().stop()
        self.step_down("shutting down")
        self._session.close()

    def step_down(self, reason: str) -> None:
        """Give up the lease and the lock (best effort: the lease expires by itself anyway)."""
        term, self.term = self.term, None
        self._quiet_until = 0.0
        self._trusted_until = 0.0
        self._next_death_check = 0.0
        if term is not None:
            log.info("leader stepping down", term=term, reason=reason)
            try:
                self._leadership.release(term, self._executor_id)
            except Exception:
                pass
        if self._has_lock:
            self._has_lock = False
            try:
                self._leadership.release_lock()
            except Exception:
                self._session.close()  # closing the session releases the lock too

    def tick(self) -> None:
        """One round: campaign, or renew when due, and do the leader's duties."""
        if self.paused.is_set():
            if self.term is not None or self._has_lock:
                self.step_down("membership lost")
            return
        dead = self._guarded(self._lead)
        term = self.term
        if term is not None and self.is_leader:  # is_leader implies a term; this says so to mypy
            try:
                self._on_tick(term, dead)
            except Exception as exc:  # a failed duty is retried next tick; the lease decides leadership
                log.warning("leader duty failed", error=str(exc), term=self.term)
            self._guarded(self._renew_after_duties)

    def _guarded(self, step: Callable[[], Sequence[MemberIncarnation]]) -> Sequence[MemberIncarnation]:
        """Run a leadership statement; any failure concedes (the lock goes with the session)."""
        try:
            return step()
        except Exception as exc:
            log.warning("leader session failed", error=str(exc))
            self.term, self._trusted_until, self._has_lock = None, 0.0, False
            self._session.close()
            return ()

    def _lead(self) -> Sequence[MemberIncarnation]:
        if self.term is None:
            self._campaign()
        return self._renew_when_due() if self.term is not None else ()

    def _campaign(self) -> None:
        epoch = self._executor_epoch()
        if epoch is None or self._clock() < self._quiet_until:
            return
        if not self._has_lock:
            seen = self._lease_seen() if self._lease_seen is not None else None
            if seen is not None and seen[0] != self._executor_id and self._clock() < seen[1]:
                # Our heartbeat saw someone lead: no read of our own. Looked at every tick, so a
                # lease released early (a leader stepping down) is taken at the next beat.
                return
            lease = self._leadership.current()
            if lease is not None and lease.valid and lease.executor_id != self._executor_id:
                # Someone leads: look again when their lease could have run out (one cheap
                # read per lease period instead of two statements every tick).
                self._quiet_until = self._clock() + lease.remaining_sec
                return
            self._has_lock = self._leadership.try_lock()
            if not self._has_lock:
                # Someone holds the lock. If their lease expired, their session is a zombie
                # (a partitioned host): end it so the lock can move.
                self._leadership.end_stale_holder()
                return
        attempt_started = self._clock()
        term = self._leadership.acquire(self._executor_id, epoch, self.lease_ttl_sec)
        if term is not None:  # else the previous lease has not expired yet: keep the lock, try next tick
            self.term = term
            self._trusted_until = attempt_started + self.lease_ttl_sec - self.interval_sec
            self._next_death_check = 0.0  # a new leader looks for dead members at once
            log.info("elected leader", term=self.term, executor_id=self._executor_id)

    def _renew_when_due(self) -> Sequence[MemberIncarnation]:
        """Renew and look for dead members, in one statement, when either is due; else send
        nothing (nothing can have changed). Returns the members it declared dead."""
        now = self._clock()
        if now < self._next_death_check and self._trusted_until - now > self.RENEW_WITHIN_INTERVALS * self.interval_sec:
            return ()
        term = self.term
        if term is None:
            return ()
        renewal = self._leadership.renew_and_mark_dead(term, self._executor_id, self.lease_ttl_sec, self.member_timeout_sec)
        if renewal is None:
            self.step_down("lease renewal refused")
            return ()
        self._trusted_until = now + self.lease_ttl_sec - self.interval_sec
        # Counted from before the statement, like the trust: a late reply only makes us look early.
        next_death = self.member_timeout_sec if renewal.next_death_sec is None else renewal.next_death_sec
        self._next_death_check = now + max(0.0, next_death)
        return renewal.dead

    def _renew_after_duties(self) -> Sequence[MemberIncarnation]:
        """Duties that ran long must not let the lease lapse before the next tick: with at most
        an interval of trust left, renew the lease now (deaths keep their own schedule)."""
        term = self.term
        attempt_started = self._clock()
        if term is None or self._trusted_until - attempt_started > self.interval_sec:
            return ()
        if not self._leadership.renew(term, self._executor_id, self.lease_ttl_sec):
            self.step_down("lease renewal refused")
        else:
            self._trusted_until = attempt_started + self.lease_ttl_sec - self.interval_sec
        return ()
