"""``DBOS.wait_first`` / ``DBOSClient.wait_first``: wait for whichever of several workflows
finishes first.

Polls the system database (one statement for all the ids) every ``polling_interval_sec``. In a
workflow body the answer is checkpointed (``DBOS.waitFirst``), so a replay returns the same
handle; from a step it is a plain wait, and a transaction may not call it, as in DBOS.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from .context import current_workflow
from .handles import ResultSource

__all__ = ["wait_first", "handle_ids", "refuse_in_transaction", "first_finished_once", "polling_interval", "DEFAULT_POLLING_INTERVAL_SEC"]

H = TypeVar("H")
# DBOS's default polling interval for waits on workflow status.
DEFAULT_POLLING_INTERVAL_SEC = 1.0


def handle_ids(handles: Sequence[H]) -> tuple[list[str], dict[str, H]]:
    """The workflow ids of ``handles`` (anything with a ``workflow_id``), and the handle of
    each, checked as DBOS checks them (ValueError for none, or for a duplicate id)."""
    if not handles:
        raise ValueError("handles must not be empty")
    workflow_ids = [str(getattr(h, "workflow_id")) for h in handles]  # noqa: B009 - any handle type
    if len(set(workflow_ids)) != len(workflow_ids):
        raise ValueError("handles must not contain duplicate workflow IDs")
    return workflow_ids, dict(zip(workflow_ids, handles))


def refuse_in_transaction() -> None:
    ctx = current_workflow()
    if ctx is not None and ctx.in_transaction:
        raise Exception("Invalid call to `DBOS.waitFirst` inside a transaction")  # DBOS raises a bare Exception


def first_finished_once(source: ResultSource, workflow_ids: list[str]) -> str | None:
    """One look: the first of the workflows that is no longer waiting or running, if any."""
    found: str | None = source.db.waits.first_finished(workflow_ids)
    return found


def _first_finished(
    source: ResultSource, workflow_ids: list[str], interval: float, stop: threading.Event,
    stopped: Callable[[], BaseException], check: Callable[[], None],
) -> str:
    while True:
        check()
        found = first_finished_once(source, workflow_ids)
        if found is not None:
            return found
        if stop.wait(interval):
            raise stopped()


def wait_first(
    source: ResultSource, handles: Sequence[H], polling_interval_sec: float, stop: threading.Event,
    stopped: Callable[[], BaseException], check: Callable[[], None] = lambda: None,
) -> H:
    """The first of ``handles`` (anything with a ``workflow_id``) whose workflow is no longer
    PENDING, ENQUEUED or DELAYED. ``stop`` set (a shutdown) raises ``stopped()``; ``check`` runs
    before every poll (a waiting workflow's own deadline and ownership)."""
    workflow_ids, by_id = handle_ids(handles)
    refuse_in_transaction()
    interval = polling_interval(polling_interval_sec)
    completed = source.recorded_call(
        "DBOS.waitFirst", lambda: _first_finished(source, workflow_ids, interval, stop, stopped, check)
    )
    return by_id[completed]


def polling_interval(polling_interval_sec: float) -> float:
    """The pause between two polls (at least 10 ms, so a zero cannot spin)."""
    return max(0.01, float(polling_interval_sec))
