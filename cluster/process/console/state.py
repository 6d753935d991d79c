"""What every page of one console shares: the system database, the doors it reads through, and
the console's mode (read-only, values hidden, its token)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from sysdb import SystemDatabase
from sysdb.console_reads import ConsoleReads
from sysdb.queue_figures import QueueFigures
from sysdb.workflow_pages import WorkflowPages

from .security import Access, access_of

__all__ = ["Console", "console_of", "queue_figures"]


@dataclass
class Console:
    """One console's database and settings (``app.state.console``)."""

    db: SystemDatabase
    read_only: bool
    token: str | None
    hide_values: bool
    refresh_sec: int = 5
    reads: ConsoleReads = field(init=False)
    pages: WorkflowPages = field(init=False)

    def __post_init__(self) -> None:
        # The console's own doors: built here rather than on SystemDatabase, since no other
        # process of the fleet reads through them.
        self.reads = ConsoleReads(self.db)
        self.pages = WorkflowPages(self.db)

    def access(self, request: Request) -> Access:
        return access_of(request, self.token)

    def context(self, **values: Any) -> dict[str, Any]:
        """A template's context: the page's values and the console's mode."""
        return {"read_only": self.read_only, "hide_values": self.hide_values, **values}


def console_of(request: Request) -> Console:
    """The console serving ``request``."""
    console: Console = request.app.state.console
    return console


def queue_figures(db: SystemDatabase) -> list[QueueFigures]:
    """Per-queue figures for the queues page and ``/api/queues``: the one place that picks the
    source. ``db.queue_figures.current()`` (the door the leader's gauges also read) when this
    pgfleet has it, else the console's own read of the same figures."""
    door = getattr(db, "queue_figures", None)
    if door is not None:
        figures: list[QueueFigures] = door.current()
        return figures
    return ConsoleReads(db).queue_figures()
