"""A dedicated connection that LISTENs for notifications (queue wake-ups).

Kept out of the pool: a LISTEN lives on one session, and a pooled connection would carry it to
whoever borrows it next.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from psycopg import sql

from .statements import statement

if TYPE_CHECKING:
    from .database import DictConnection

__all__ = ["NotificationConnection"]


class NotificationConnection:
    """One session subscribed to some channels."""

    def __init__(self, conn: DictConnection, channels: tuple[str, ...]) -> None:
        self._conn = conn
        self.channels = channels
        for channel in channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def notifications(self, timeout_sec: float) -> Iterator[tuple[str, str]]:
        """``(channel, payload)`` pairs that arrive within ``timeout_sec``."""
        for notify in self._conn.notifies(timeout=timeout_sec):
            yield notify.channel, notify.payload

    def is_listening(self) -> bool:
        """False when a subscription vanished (it dies silently with its session)."""
        row = self._conn.execute(statement("check_listening"), {"channels": list(self.channels)}).fetchone()
        return bool(row and row["listening"])

    def close(self) -> None:
        self._conn.close()
