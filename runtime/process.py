"""The process object: one executor of the fleet, with everything it owns.

A :class:`DBOSProcess` is built from a resolved configuration and the registry of what the
program declares (its functions, queues and schedules). It owns its notification hub and its
schedule declarations and, once launched, its databases, its :class:`~runtime.executor.Executor`
and the executor's :class:`~runtime.services.ClusterServices`; nothing of that is shared with
another process object, so several can run in one interpreter (each its own executor id and
connection pool). Each collaborator is handed what it needs when it is built: the executor gets
the databases, the registry, the hub and this object as its :class:`~runtime.executor.ClusterHooks`
(forwarded to the services once they run), the services get the executor.

``DBOS`` is a facade over the process object ``DBOS(config=...)`` built (:mod:`runtime.current`);
tests and embedders may build and launch more.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from . import logs, queue_admin, recovery, scheduler
from .config import ResolvedConfig
from .context import current_workflow
from .current import not_launched
from .databases import open_databases
from .enqueue import enqueue_call
from .errors import DBOSException
from .executor import Executor
from .handles import WorkflowHandle
from .notifications import NotificationHub
from .queues import Queue
from .registry import Registry
from .services import ClusterServices
from .starts import start_call

__all__ = ["DBOSProcess"]

P = ParamSpec("P")
R = TypeVar("R")


class DBOSProcess:
    """One executor of the fleet: its configuration, registry, notification hub, schedules and,
    once launched, its databases, executor and cluster services."""

    def __init__(self, config: ResolvedConfig, registry: Registry) -> None:
        self.config = config
        self.registry = registry
        self.hub = NotificationHub()
        self.executor: Executor | None = None
        self.services: ClusterServices | None = None
        # How often this process declared its schedules (its leader's ticker re-reads them then).
        self._schedules_declared = 0
        # What DBOS.listen_queues named (None: not called): the queues this process serves
        # unless the config's ``queues`` key says otherwise.
        self.listened_queues: tuple[str, ...] | None = None
        self._lock = threading.RLock()

    @property
    def launched(self) -> bool:
        return self.executor is not None

    def listen_queues(self, names: tuple[str, ...]) -> None:
        """Serve only the queues ``names`` (``DBOS.listen_queues``): before launch, once, as in DBOS."""
        with self._lock:
            if self.launched:
                raise DBOSException("listen_queues called after DBOS is launched")
            if self.listened_queues is not None:
                raise DBOSException("listen_queues called more than once")
            self.listened_queues = names

    def served_queues(self) -> tuple[str, ...] | None:
        """The queues this process serves: the config's ``queues`` key, else what
        ``DBOS.listen_queues`` named, else (None) every queue it knows."""
        return self.config.queues if self.config.queues is not None else self.listened_queues

    def serves_queue(self, name: str) -> bool:
        served = self.served_queues()
        return served is None or name in served

    # -- lifecycle -------------------------------------------------------------------------------

    def launch(self) -> None:
        """Connect to the system database (starting the embedded one if no URL is configured),
        migrate it, join the cluster, and recover this executor's PENDING workflows (in the
        background: launch returns once they are listed). All or nothing: a launch that fails
        stops whatever it started before raising, so it can simply be called again. Launching
        again once launched changes nothing and says so in a warning, as DBOS does."""
        with self._lock:
            if self.executor is not None:
                # DBOS's own words and behaviour (apps that launch from several entry points
                # rely on it); not silent, so a mistaken second launch shows in the logs.
                logs.logger.warning("DBOS was already launched")
                return
            logs.configure_level(self.config.log_level)
            db, app_db = open_databases(self.config)
            executor = Executor(self.config, db, app_db, self.registry, self.hub, hooks=self)
            try:
                self._join_cluster(executor)
            except BaseException:
                services, self.services, self.executor = self.services, None, None
                _shut_down(executor, services, 0)
                raise

    def _join_cluster(self, executor: Executor) -> None:
        # As DBOS: every launch records its application version (the first launch of a version
        # makes it the latest).
        queue_admin.record_version(executor.db, executor.application_version, executor.config.name)
        services = ClusterServices(executor, lambda: self._schedules_declared, self.served_queues())
        services.register()  # before recovery, so nobody sweeps what we are about to recover
        self.services = services
        self.executor = executor
        services.start_heartbeat()  # before recovery: a long recovery must not look like death
        # Read before any work is taken, so the list holds only what an earlier life left.
        recovery.requeue_unfinished(executor)
        pending = recovery.list_recoverable(executor)
        recovery.warn_of_unregistered_owners(executor)
        self.declare_schedules(lambda name: self.registry.workflow(name) is not None)
        services.start(recover=pending)
        queue_admin.log_served_queues(executor.db, self.registry.all_queues(), self.config.name, self.serves_queue)

    def destroy(self, workflow_completion_timeout_sec: float = 0) -> None:
        """Leave the cluster gracefully and close every connection: stop taking work, let
        running workflows finish for up to ``workflow_completion_timeout_sec``, then abandon the
        rest and hand them over to the live members at once (a later launch of this executor
        id recovers what nobody took). Does nothing if not launched."""
        with self._lock:
            executor = self.executor
            if executor is None:
                return
            # The executor stays reachable while it drains: workflows finishing within the
            # grace period still record their steps through it.
            _shut_down(executor, self.services, workflow_completion_timeout_sec)
            self.executor = self.services = None

    def declare_schedules(self, can_run: Callable[[str], bool]) -> None:
        """Write the registry's schedules that ``can_run`` accepts to the database (at launch,
        and for a schedule declared after it)."""
        executor = self._own_executor("declaring schedules")
        scheduler.declare_schedules(executor.db, self.registry.all_schedules(), can_run)
        self._schedules_declared += 1

    # -- the API of one process (DBOS's class methods act on the current one) -----------------

    def start_workflow(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """Start a workflow on this process's executor in the background; return its handle."""
        handle: WorkflowHandle[R] = start_call(func, args, dict(kwargs), self._own_executor("start_workflow"))
        return handle

    def enqueue(self, queue: Queue, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> WorkflowHandle[R]:
        """``queue.enqueue(func, ...)`` from this process (any executor serving it may run it)."""
        handle: WorkflowHandle[R] = enqueue_call(queue, func, args, dict(kwargs), self._own_executor("enqueue"))
        return handle

    def retrieve_workflow(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle on a workflow, wherever it runs, read through this process's executor."""
        return WorkflowHandle(workflow_id, source=self._own_executor("retrieve_workflow"))

    def _own_executor(self, what: str) -> Executor:
        executor = self.executor
        if executor is None:
            raise not_launched()
        ctx = current_workflow()
        if ctx is not None and ctx.executor is not executor:
            raise DBOSException(
                f"{what}: called inside a workflow of executor {ctx.executor_id!r}, not of this process ({self.config.executor_id!r})"
            )
        return executor

    # -- ClusterHooks: what the executor asks of the services around it ------------------------

    def lease_valid(self) -> bool:
        services = self.services
        return services is None or services.heartbeat.lease_valid()

    def queue_work_changed(self, queue_name: str) -> None:
        services = self.services
        if services is not None:
            services.queue_work_changed(queue_name)

    def stopped_by_outage(self, workflow_id: str, owner_epoch: int) -> None:
        services = self.services
        if services is not None:
            services.stopped_by_outage(workflow_id, owner_epoch)


def _shut_down(executor: Executor, services: ClusterServices | None, grace_sec: float) -> None:
    """Stop an executor and its services (see :meth:`DBOSProcess.destroy`)."""
    if services is not None:
        services.stop_taking_work()
    executor.drain(grace_sec)
    executor.stop("the executor is shutting down")
    if services is not None:
        try:
            services.hand_over()
        except Exception as exc:  # the database may be gone: the leader's sweep does it later
            executor.log.warning("could not hand workflows over at shutdown", error=str(exc))
        services.stop()
    executor.close()
