"""Wiring an executor to the cluster's claimer: which queues it serves, what it can run, and
how a claimed workflow is started here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.claimer import QueueClaimer, QueueListener, QueueSpec, ThrottledNotifier

from .queues import INTERNAL_QUEUE_NAME, queue_registry
from .registry import registry

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["start_queue_services"]


def start_queue_services(executor: "Executor") -> None:
    """Start the claimer (and, unless disabled, its LISTEN/NOTIFY listener) for ``executor``."""
    served = executor.config.queues

    internal = QueueSpec(INTERNAL_QUEUE_NAME, None, None, None, False, 1.0)

    def specs() -> list[QueueSpec]:
        return [internal] + [
            QueueSpec(
                name=q.name,
                concurrency=q.concurrency,
                worker_concurrency=q.worker_concurrency,
                rate_limit=q.rate_limit,
                partitioned=q.partition_queue,
                polling_interval_sec=q.polling_interval_sec,
            )
            for q in queue_registry.all()
            if (served is None or q.name in served) and q.name != INTERNAL_QUEUE_NAME
        ]

    claimer = QueueClaimer(
        executor.db,
        executor.executor_id,
        executor.application_version,
        queues=specs,
        workflow_names=lambda: list(registry.workflows),
        run_claimed=executor.run_claimed,
    )
    notifier = ThrottledNotifier(executor.db)

    def work_changed(queue_name: str) -> None:
        claimer.wake()  # this process's claimer at once, without a round trip
        if executor.config.use_listen_notify:
            notifier.notify(queue_name)  # and the rest of the fleet

    executor.on_queue_slot_freed = work_changed
    executor.services.append(claimer)
    if executor.config.use_listen_notify:
        listener = QueueListener(executor.db, lambda payload: claimer.wake())
        executor.services.append(listener)
        listener.start()
    claimer.start()
