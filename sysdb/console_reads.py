"""The web console's reads (issue #13) that no other door makes: the leader log's latest
actions, takeovers with how long the lost owner had been silent, one workflow's takeovers,
streams and messages.

Everything else the console shows comes from the doors ``pgfleet status`` and ``pgfleet
workflow get`` use (``db.fleet``, ``db.leadership``, ``db.workflows``, ``db.steps``,
``db.events``, ``db.attempts``, ``db.queue_figures``); the paged workflow list is
:mod:`sysdb.workflow_pages`.
The console builds this door itself (``ConsoleReads(db)``): no process but the console needs it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from .door import Door, row_to
from .takeover import TakeoverRecord

__all__ = ["ConsoleReads", "LeaderLogEntry", "TakeoverView", "StreamEntry", "MessageEntry"]

# A workflow page shows at most this many stream values and messages (the rest is elided).
DETAIL_LIMIT = 200


@dataclass(frozen=True)
class LeaderLogEntry:
    """One action a leader logged (``dbos.pgfleet_leader_log``)."""

    id: int
    at: datetime.datetime
    term: int
    executor_id: str
    action: str
    detail: Any  # JSONB, as stored


@dataclass(frozen=True)
class TakeoverView(TakeoverRecord):
    """One takeover as the console shows it: the takeover log's line (who lost the workflow,
    where it went, who moved it), its row id, and how long its lost owner had been silent by
    then (None once that member row holds a newer incarnation)."""

    id: int = 0
    silent_sec: float | None = None


@dataclass(frozen=True)
class StreamEntry:
    """One value of one of a workflow's streams, as stored (serialized)."""

    key: str
    offset: int
    value: str
    serialization: str | None
    function_id: int


@dataclass(frozen=True)
class MessageEntry:
    """One message sent to a workflow, as stored (serialized)."""

    message_uuid: str
    topic: str | None
    message: str
    serialization: str | None
    created_at_epoch_ms: int
    consumed: bool


class ConsoleReads(Door):
    """The console's own reads; each returns at most a page's worth of rows."""

    def leader_log(self, limit: int = 20) -> list[LeaderLogEntry]:
        """The leader log's latest ``limit`` actions, newest first."""
        return [row_to(LeaderLogEntry, r) for r in self._execute("console_leader_log", {"limit": limit})]

    def recent_takeovers(self, limit: int = 20) -> list[TakeoverView]:
        """The latest ``limit`` takeovers, newest first."""
        return [row_to(TakeoverView, r) for r in self._execute("console_recent_takeovers", {"limit": limit})]

    def workflow_takeovers(self, workflow_id: str) -> list[TakeoverView]:
        """Every takeover of one workflow, oldest first."""
        return [row_to(TakeoverView, r) for r in self._execute("console_workflow_takeovers", {"workflow_uuid": workflow_id})]

    def streams(self, workflow_id: str, limit: int = DETAIL_LIMIT) -> list[StreamEntry]:
        """A workflow's stream values by key then offset (at most ``limit``)."""
        rows = self._execute("console_workflow_streams", {"workflow_uuid": workflow_id, "limit": limit})
        return [row_to(StreamEntry, r) for r in rows]

    def messages(self, workflow_id: str, limit: int = DETAIL_LIMIT) -> list[MessageEntry]:
        """The messages sent to a workflow, oldest first (at most ``limit``)."""
        rows = self._execute("console_workflow_messages", {"workflow_uuid": workflow_id, "limit": limit})
        return [row_to(MessageEntry, r) for r in rows]
