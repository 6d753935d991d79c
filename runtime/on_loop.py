"""DBOS's refusal of its blocking methods on a running event loop (its ``check_async``).

A sync method that waits on the database (``DBOS.send``, ``DBOS.list_workflows`` ...) called
from a thread whose asyncio loop is running would stall every task of that loop for the round
trip, or forever for a wait. DBOS raises a RuntimeError naming the ``_async`` twin to await
instead, before doing anything (no step position is taken); pgfleet raises the same.
pgfleet's own ``_async`` methods run these sync methods in worker threads, where no loop runs.
``Queue``'s settings only warn there, as DBOS's do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TypeVar

from .logs import logger

__all__ = ["refuse_on_loop", "refusing_on_loop", "warn_on_loop", "loop_running"]

T = TypeVar("T")


def loop_running() -> bool:
    """Whether an asyncio event loop runs in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def refuse_on_loop(method: str) -> None:
    """Raise DBOS's RuntimeError if ``method`` (``"DBOS.send"``: a blocking method) is called
    on a running loop. DBOS's message names the method without its class."""
    if loop_running():
        name = method.rpartition(".")[2]
        raise RuntimeError(f"{name}() was called while an event loop is running. Use await {name}_async(...) instead.")


def refusing_on_loop(method: str, values: Iterator[T]) -> Iterator[T]:
    """``values``, refused on a running loop when first read (DBOS's ``read_stream`` is a
    generator: its check runs at the first ``next``, not at the call)."""
    refuse_on_loop(method)
    yield from values


def warn_on_loop(method: str, alternative: str) -> None:
    """DBOS's warning for a sync read or write of a database-backed queue's row on a loop."""
    if loop_running():
        logger.warning(
            f"Synchronous '{method}' was called from a running asyncio event loop. This blocks the loop on a "
            f"database round-trip. Use '{alternative}' instead."
        )
