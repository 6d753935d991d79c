"""What every check of a chaos run's history shares: who a session was (its
``application_name``), and the replay of the ownership log into the ownerships the workflow rows
had, each from the commit that gave it to the commit that ended it.

The log is replayed in commit order, ``(at, seq)``: ``at`` is read by a deferred trigger as its
transaction commits, so a later ``at`` is a later commit (``seq`` orders the rows of one commit).
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sysdb.chaos_history import OwnershipChange

__all__ = [
    "Writer",
    "parse_writer",
    "Ownership",
    "ordered",
    "replay_ownership",
    "changes_by_workflow",
    "around",
    "evidence",
    "ts",
    "APPLICATION_NAME_MAX",
    "PURPOSES",
]

# Postgres keeps the first 63 bytes of an application_name (NAMEDATALEN - 1).
APPLICATION_NAME_MAX = 63

# `pgfleet <pid> <executor_id>[ <purpose>]`: pid first, so truncation never loses it. The
# purposes of an executor's dedicated sessions, as sysdb names them (its pool has none).
_WRITER = re.compile(r"pgfleet (\d+) (.+)", re.DOTALL)
PURPOSES = ("heartbeat", "leader", "listener", "app")


@dataclass(frozen=True)
class Writer:
    """An executor's session, from its application_name. ``truncated``: the name filled all 63
    bytes, so ``executor_id`` may be cut short (see :meth:`is_executor`)."""

    pid: int
    executor_id: str
    purpose: str | None
    truncated: bool

    def is_executor(self, executor_id: str | None) -> bool:
        """Whether this session is (a process of) ``executor_id``."""
        if executor_id is None:
            return False
        if self.executor_id == executor_id:
            return True
        return self.truncated and self.purpose is None and executor_id.startswith(self.executor_id)


def parse_writer(application_name: str | None) -> Writer | None:
    """The executor session an application_name names, or None for any other session (a
    client, the CLI, psql, the chaos runner itself). The grammar of
    ``sysdb.chaos_history.parse_writer`` (``pgfleet <pid> <executor_id>[ <purpose>]``), which
    also says the purpose: a leader's session is not an owner's."""
    if not application_name:
        return None
    match = _WRITER.fullmatch(application_name)
    if match is None:
        return None
    executor_id, purpose = match.group(2), None
    head, _, last = executor_id.rpartition(" ")
    if head and last in PURPOSES:
        executor_id, purpose = head, last
    truncated = len(application_name.encode()) >= APPLICATION_NAME_MAX
    return Writer(int(match.group(1)), executor_id, purpose, truncated)


@dataclass
class Ownership:
    """One PENDING ownership ``(workflow, executor, epoch)`` a row had: from the commit that gave
    it (``granted_by``) to the first commit that changed its epoch or took it out of PENDING
    (``ended_by``; None while it lasted to the end). ``pid``: the process that held it, when the
    grant says so (a start, claim or recovery committed by that executor's own session); None
    when another session granted it (a takeover assigning it to a live member)."""

    workflow_uuid: str
    epoch: int
    executor_id: str | None
    start: float
    granted_by: OwnershipChange
    end: float | None = None
    ended_by: OwnershipChange | None = None
    pid: int | None = None

    def held_at(self, t: float) -> bool:
        """Whether this ownership was in force at time ``t``."""
        return self.start <= t and (self.end is None or t < self.end)


def ordered(changes: Iterable[OwnershipChange]) -> list[OwnershipChange]:
    """The ownership log in commit order."""
    return sorted(changes, key=lambda c: (c.at, c.seq))


def _grant_pid(change: OwnershipChange) -> int | None:
    writer = parse_writer(change.writer)
    if writer is not None and writer.is_executor(change.executor_id):
        return writer.pid  # any session of that process: its pool, or its leader assigning to itself
    return None


def replay_ownership(changes: Iterable[OwnershipChange]) -> dict[tuple[str, int], Ownership]:
    """(workflow, epoch) → the :class:`Ownership` it was, for every PENDING ownership in the log."""
    result: dict[tuple[str, int], Ownership] = {}
    current: dict[str, tuple[str, int] | None] = {}
    for change in ordered(changes):
        workflow = change.workflow_uuid
        held = current.get(workflow)
        owner = (workflow, change.owner_epoch) if change.status == "PENDING" and change.owner_epoch is not None else None
        if held is not None and held != owner:
            result[held].end = change.at
            result[held].ended_by = change
        if owner is not None and owner != held and owner not in result:
            result[owner] = Ownership(workflow, owner[1], change.executor_id, change.at, change, pid=_grant_pid(change))
        current[workflow] = owner
    return result


def changes_by_workflow(changes: Iterable[OwnershipChange]) -> dict[str, list[OwnershipChange]]:
    """Each workflow's ownership changes, in commit order: how its row changed hands."""
    by_workflow: dict[str, list[OwnershipChange]] = defaultdict(list)
    for change in ordered(changes):
        by_workflow[change.workflow_uuid].append(change)
    return by_workflow


def around(changes: list[OwnershipChange], t: float, before: int = 6, after: int = 2) -> list[OwnershipChange]:
    """The changes of one row (in commit order) nearest a moment: the last ``before`` up to ``t``
    and the first ``after`` past it, so a violation's evidence shows how the row changed hands
    then, however long its history."""
    cut = next((i for i, c in enumerate(changes) if c.at > t), len(changes))
    return changes[max(0, cut - before) : cut + after]


def evidence(row: Any, **extra: Any) -> dict[str, Any]:
    """A history row as a plain dict for a violation's evidence, naming what it is (``row``) and
    with its time also readable (``at_utc``)."""
    data: dict[str, Any] = {"row": type(row).__name__}
    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        data.update(dataclasses.asdict(row))
    elif isinstance(row, dict):
        data.update(row)
    at = data.get("at")
    if isinstance(at, float):
        data["at_utc"] = ts(at)
    data.update(extra)
    return data


def ts(t: float | None) -> str:
    """A database time as ``HH:MM:SS.mmm`` (UTC), for messages."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%H:%M:%S.%f")[:-3]
