"""A dedicated connection that LISTENs for notifications (queue wake-ups).

Kept out of the pool: a LISTEN lives on one session, and a pooled connection would carry it to
whoever borrows it next.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from psycopg import sql

from .statements import statement

__all__ = ["NotificationConnection"]


class NotificationConnection:
    """One session subscribed to one channel."""

    def __init__(self, conn: psycopg.Connection, channel: str) -> None:
        self._conn = conn
        self.channel = channel
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def notifications(self, timeout_sec: float) -> Iterator[str]:
        """Payloads that arrive within ``timeout_sec`` (returns early when none come)."""
        for notify in self._conn.notifies(timeout=timeout_sec):
            yield notify.payload

    def is_listening(self) -> bool:
        """False when the subscription vanished (it dies silently with its session)."""
        row = self._conn.execute(statement("check_listening"), {"channel": self.channel}).fetchone()
        return bool(row and row["listening"])

    def close(self) -> None:
        self._conn.close()
