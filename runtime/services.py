"""Wiring an executor into the cluster: membership and heartbeat, leader election, queue
claiming, assignment pick-up, and the LISTEN/NOTIFY wake-ups that tie them together.

The cluster package knows nothing of Python functions; this module hands it callbacks that
run workflows here, and reacts when the cluster says this executor lost its membership.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cluster.coordination.assignments import AssignmentPoller
from cluster.coordination.claimer import QueueClaimer, QueueListener, QueueSpec, ThrottledNotifier
from cluster.coordination.database_queues import DatabaseQueues
from cluster.coordination.leader import LeaderElector
from cluster.coordination.membership import Heartbeat, MemberInfo, Membership
from cluster.coordination.sweeper import LeaderDuties, WorkMoved, take_over_member
from sysdb.channels import EVENTS_CHANNEL, MESSAGES_CHANNEL, QUEUE_CHANNEL
from sysdb.claims import assigned_member
from sysdb.logs import get_logger
from sysdb.recovery import PendingWorkflow
from sysdb.workflow_rows import AcquiredWorkflow

from . import metrics, ownership, recovery
from .errors import DBOSException
from .queues import INTERNAL_QUEUE_NAME
from .recoverer import RecoveryService
from .retention import retention_duties
from .scheduler import ScheduleTicker

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["ClusterServices"]

log = get_logger("pgfleet.runtime")

# The internal queue's poll backstop; its work normally arrives with a NOTIFY.
INTERNAL_QUEUE_POLL_SEC = 5.0


class ClusterServices:
    """The background loops of one executor, started at launch and stopped at destroy."""

    def __init__(self, executor: Executor, schedules_declared: Callable[[], int], served: tuple[str, ...] | None) -> None:
        """``schedules_declared`` counts the process's schedule declarations (the leader's
        ticker re-reads the schedules when it changes); ``served`` names the only queues to
        claim from (besides the internal one), None: every queue."""
        self.executor = executor
        self._served_queues = served
        config = executor.config
        db = executor.db
        # Set by start(): from then on the executor's news (queue work, outage stops) wakes us.
        self._taking_work = False
        # The internal queue is woken by NOTIFY (client resumes, scheduled ticks): poll it slowly.
        self._internal_queue = QueueSpec(INTERNAL_QUEUE_NAME, None, None, None, False, INTERNAL_QUEUE_POLL_SEC)
        self.membership = self._membership()
        self.heartbeat = Heartbeat(db, self.membership, config.heartbeat_interval_sec, self._lost, self._rejoined)
        self.notifier = ThrottledNotifier(db)
        self._ticker = ScheduleTicker(db, executor.executor_id, schedules_declared, application_name=config.name,
                                      workflow_schedules_refresh_sec=config.scheduler_polling_interval_sec)
        # Claims in flight, so the orphan sweep never adopts rows a claim is about to run.
        self.owning_writes = ownership.OwningWrites()
        self.database_queues = DatabaseQueues(db, config.name, self._serves)
        self.claimer = self._claimer()
        self.recoverer = RecoveryService(executor)
        self.assignments = AssignmentPoller(
            db,
            executor.executor_id,
            self._held_epochs,
            functools.partial(self._run_acquired, "assigned", recovery.run_assigned),
            sweep=functools.partial(ownership.adopt_orphans, executor, self.owning_writes, self._held_epochs),
            member_epoch=lambda: self.membership.epoch,
        )
        # A statement that succeeded only on a retry may follow a lost reply: sweep for orphans now.
        db.on_retried = self.assignments.wake
        self.leader = self._leader()
        self.listener = (
            QueueListener(db, self._notified, channels=(QUEUE_CHANNEL, MESSAGES_CHANNEL, EVENTS_CHANNEL))
            if config.use_listen_notify
            else None
        )

    def _workflow_names(self) -> list[str]:
        return sorted(self.executor.registry.workflows)

    def _membership(self) -> Membership:
        executor, config = self.executor, self.executor.config
        return Membership(
            executor.db,
            MemberInfo(
                executor_id=executor.executor_id,
                application_name=config.name,
                application_version=executor.application_version,
                queues=self._served_queues,  # what this process serves (config or listen_queues)
                supervisor_id=config.supervisor_id,
            ),
            self._workflow_names,
            config.member_timeout_sec,
            queue_limits=self._queue_limits,
        )

    def _claimer(self) -> QueueClaimer:
        executor = self.executor
        return QueueClaimer(
            executor.db,
            executor.executor_id,
            executor.application_version,
            queues=self._queue_specs,
            workflow_names=self._workflow_names,
            run_claimed=functools.partial(self._run_acquired, "claimed", recovery.run_claimed),
            member_epoch=lambda: self.membership.epoch,
            bindings=executor.registry.method_bindings,
            capacity=executor.capacity,
            track=self.owning_writes.track,
            discovery=lambda: self.database_queues.discovery([s.name for s in self._queue_specs()], self._served()),
            on_discovered=self._discovered,
        )

    def _leader(self) -> LeaderElector:
        executor, config = self.executor, self.executor.config
        return LeaderElector(
            executor.db,
            executor.executor_id,
            lambda: self.membership.epoch,
            interval_sec=config.heartbeat_interval_sec,
            lease_ttl_sec=config.member_timeout_sec,
            member_timeout_sec=config.member_timeout_sec,
            lease_seen=self.heartbeat.lease_seen,
            on_tick=LeaderDuties(
                executor.db,
                executor.executor_id,
                config.member_timeout_sec,
                self._work_moved,
                extra_duties=[self._enqueue_scheduled_ticks, *retention_duties(executor)],
            ),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def register(self) -> None:
        """Join the cluster (before recovery, so nobody sweeps what we are about to recover)."""
        try:
            self.membership.register()
        except Exception as exc:
            raise DBOSException(str(exc)) from exc

    def start_heartbeat(self) -> None:
        """Beat from right after registration (recovery may take a while)."""
        self.heartbeat.start()

    def start(self, recover: list[PendingWorkflow]) -> None:
        """Start taking work: wake-ups, claiming, assignments and the leader campaign, and
        recover ``recover`` (the PENDING rows listed before any of this started) in the
        background."""
        self._taking_work = True
        self.recoverer.start()
        self.recoverer.submit(recover)
        if self.listener is not None:
            self.listener.start()
        self.claimer.start()
        self.assignments.start()
        self.leader.start()

    def stop_taking_work(self) -> None:
        """Stop claiming, recovering and picking up assignments (the first step of a graceful
        stop)."""
        self.recoverer.stop()
        self.claimer.stop()
        self.assignments.stop()

    def hand_over(self) -> int:
        """Leave: announce it, and give every unfinished workflow to the live members now."""
        # Once its row says dead, the heartbeat would see it and rejoin, and recovery would
        # take back what was just handed over: this member never rejoins again.
        self.heartbeat.retire()
        if not self.membership.set_status("dead"):
            return 0
        moved = take_over_member(
            self.executor.db,
            self.membership.executor_id,
            self.membership.epoch or 0,
            by_executor_id=self.membership.executor_id,
            member_timeout_sec=self.membership.member_timeout_sec,
        )
        self._work_moved(WorkMoved.by_takeover(moved))
        return len(moved)

    def stop(self) -> None:
        self.recoverer.stop()
        self.leader.stop()
        self.heartbeat.stop()
        if self.listener is not None:
            self.listener.stop()

    # -- what the executor tells us (through its process object's hooks) ------------------------

    def queue_work_changed(self, queue_name: str) -> None:
        """Work was enqueued on the queue, or a workflow of it finished here."""
        if self._taking_work:
            self._queue_work_changed(queue_name)

    def stopped_by_outage(self, workflow_id: str, owner_epoch: int) -> None:
        """A run stopped by an outage leaves its row PENDING here with no thread: the orphan
        sweep (which adopts exactly such rows) takes it up, retrying while the database is down."""
        if self._taking_work:
            self.assignments.wake()

    # -- callbacks ---------------------------------------------------------------------------

    def _served(self) -> tuple[str, ...] | None:
        """The queues this executor serves (None: every queue; see ``DBOSProcess.served_queues``)."""
        return self._served_queues

    def _serves(self, queue_name: str) -> bool:
        served = self._served()
        return queue_name == INTERNAL_QUEUE_NAME or served is None or queue_name in served

    def _queue_limits(self) -> dict[str, Any]:
        return {
            spec.name: {
                "concurrency": spec.concurrency,
                "worker_concurrency": spec.worker_concurrency,
                "rate_limit": list(spec.rate_limit) if spec.rate_limit else None,
                "partitioned": spec.partitioned,
                "priority_enabled": spec.priority_enabled,
            }
            for spec in self._code_queue_specs()
        }

    def _queue_specs(self) -> list[QueueSpec]:
        """Every queue to claim from: the internal queue, those declared in code, and the
        database-backed ones (a code declaration of the same name wins, as in DBOS)."""
        code = self._code_queue_specs()
        return [self._internal_queue, *code, *self.database_queues.specs({s.name for s in code} | {INTERNAL_QUEUE_NAME})]

    def _code_queue_specs(self) -> list[QueueSpec]:
        served = self._served()
        return [
            QueueSpec(
                name=q.name,
                concurrency=q.concurrency,
                worker_concurrency=q.worker_concurrency,
                rate_limit=q.rate_limit,
                partitioned=q.partition_queue,
                polling_interval_sec=q.polling_interval_sec,
                priority_enabled=q.priority_enabled,
            )
            for q in self.executor.registry.all_queues()
            if (served is None or q.name in served) and q.name != INTERNAL_QUEUE_NAME
        ]

    def _enqueue_scheduled_ticks(self, term: int) -> None:
        if self._ticker(term):
            self._queue_work_changed(INTERNAL_QUEUE_NAME)

    def _queue_work_changed(self, queue_name: str) -> None:
        self._note_queue_name(queue_name)
        if self._serves(queue_name):
            self.claimer.wake(queue_name)  # this process's claimer at once, without a round trip
        if self.executor.config.use_listen_notify:
            self.notifier.notify(queue_name)  # and the rest of the fleet

    def _work_moved(self, moved: WorkMoved) -> None:
        """After a takeover: wake the queues that got work back and the members that got some."""
        metrics.TAKEOVERS.inc(moved.taken_over)
        for queue_name in moved.queues:
            self._queue_work_changed(queue_name)
        for executor_id in moved.assignees:
            if executor_id == self.executor.executor_id:
                self.assignments.wake()
            else:
                self.executor.db.claims.wake_member(executor_id)

    def _notified(self, channel: str, payload: str) -> None:
        if channel != QUEUE_CHANNEL:
            self.executor.hub.notify(payload)  # a message or an event: wake whoever waits for it
            return
        assignee = assigned_member(payload)
        if assignee is not None:
            if assignee == self.executor.executor_id:
                self.assignments.wake()
            return
        if payload:
            self._note_queue_name(payload)
        self.claimer.wake(payload or None)  # the payload names the queue ("" after a reconnect: all)

    def _discovered(self, queue_names: set[str]) -> None:
        """The claimer's probe found work on database-backed queues it does not know: read them
        now and claim from them at once (no wake for a name the re-read still lacks, so an
        inconsistent row cannot make the claimer spin)."""
        found = self.database_queues.refresh_now() & queue_names
        for name in found:
            self.claimer.wake(name)

    def _note_queue_name(self, queue_name: str) -> None:
        """A queue this executor does not know may be a newly registered database-backed one."""
        if queue_name != INTERNAL_QUEUE_NAME and self.executor.registry.queue(queue_name) is None:
            self.database_queues.heard_of(queue_name)

    def _lost(self, reason: str) -> None:
        """Declared dead or cut off: stop executing and claiming until we rejoin."""
        self.leader.paused.set()
        self.claimer.paused.set()
        self.assignments.paused.set()
        self.executor.abandon_all(reason)

    def _run_acquired(self, what: str, run: Callable[..., None], rows: list[AcquiredWorkflow]) -> None:
        """Run the rows a claim or an assignment poll returned, unless the membership it was
        made under (each row's ``acquired_member_epoch``) has ended since.

        A reply can arrive long after its statement ran (the process was paused, the statement
        sat in retries). If this member lost its membership meanwhile, the rows belong to a
        life of this executor that is over: the rejoin's recovery replays them (by
        compare-and-set), or a takeover already gave them to someone else. Running them here too
        would run their steps in two places at once. The generation is read before the check:
        a loss that lands after the check abandons these very runs."""
        generation = self.executor.generation
        acquired_under = {row.acquired_member_epoch for row in rows}
        if self.heartbeat.lost or acquired_under != {self.membership.epoch}:
            log.warning(
                f"{what} workflows arrived after this member's membership ended: leaving them to recovery",
                workflow_ids=[row.workflow_uuid for row in rows],
                acquired_under=sorted(e for e in acquired_under if e is not None),
                member_epoch=self.membership.epoch,
            )
            return
        run(self.executor, rows, generation)

    def _held_epochs(self) -> list[int]:
        """Epochs the assignment poller must not pick up: the workflows running here, and the
        rows recovery holds (both would replay the same row)."""
        return self.executor.running_epochs() + self.recoverer.pending_epochs()

    def _rejoined(self, epoch: int) -> None:
        """Back in the cluster: list what is still ours (before claiming again, so the list has
        no new claims), recover it in the background (never here: a long recovery would stop
        the heartbeats), and take work again."""
        log.info("executor rejoined the cluster", executor_id=self.executor.executor_id, epoch=epoch)
        # If the list cannot be read, this raises: the heartbeat stays lost and rejoins again.
        self.recoverer.submit(recovery.list_recoverable(self.executor))
        self.leader.paused.clear()
        self.claimer.paused.clear()
        self.assignments.paused.clear()
        self.claimer.wake(None)
