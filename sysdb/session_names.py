"""How an executor's sessions name themselves (``application_name``, in ``pg_stat_activity`` and
as ``current_setting('application_name')`` to a trigger): ``pgfleet <pid> <executor_id>`` for
its pool, followed by the purpose for its other sessions (``... heartbeat``, ``... leader``,
``... listener``, ``... app`` for the application database).

The pid comes first so that Postgres's 63-byte limit, which cuts the end of a long name, never
loses it; only an executor id longer than about 45 characters is cut (and the purpose with it).
A chaos run reads the writer of every change from it (:func:`parse_session_name`).
"""

from __future__ import annotations

import re

__all__ = ["executor_session_name", "with_purpose", "parse_session_name", "SESSION_PURPOSES", "MAX_APPLICATION_NAME"]

# Postgres keeps the first NAMEDATALEN - 1 bytes of an application_name.
MAX_APPLICATION_NAME = 63
# The purposes an executor's sessions other than its pool's add after its executor id.
SESSION_PURPOSES = ("heartbeat", "leader", "listener", "app")

_NAME = re.compile(r"pgfleet (\d+) (.+)", re.DOTALL)


def executor_session_name(pid: int, executor_id: str, purpose: str | None = None) -> str:
    """``pgfleet <pid> <executor_id>[ <purpose>]``, cut to what Postgres keeps."""
    name = f"pgfleet {pid} {executor_id}" + (f" {purpose}" if purpose else "")
    return _truncate(name)


def with_purpose(application_name: str, purpose: str) -> str:
    """The name of a dedicated session of whoever named its pool ``application_name``."""
    return _truncate(f"{application_name} {purpose}")


def parse_session_name(application_name: str) -> tuple[int, str] | None:
    """``(pid, executor_id)`` of an executor's session name, or None for any other name (a
    client, a supervisor, psql, a test). A trailing purpose (:data:`SESSION_PURPOSES`) is not
    part of the executor id; an id the 63-byte limit cut comes back cut."""
    match = _NAME.fullmatch(application_name)
    if match is None:
        return None
    executor_id = match.group(2)
    head, _, last = executor_id.rpartition(" ")
    if head and last in SESSION_PURPOSES:
        executor_id = head
    return int(match.group(1)), executor_id


def _truncate(name: str) -> str:
    # By bytes, as Postgres does, without splitting a character.
    encoded = name.encode("utf-8")
    if len(encoded) <= MAX_APPLICATION_NAME:
        return name
    return encoded[:MAX_APPLICATION_NAME].decode("utf-8", errors="ignore")
