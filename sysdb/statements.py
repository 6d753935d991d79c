"""Named SQL statements.

Every statement pgfleet sends lives in ``sysdb/sql/<name>.sql``, one statement per file, named
after what it does (the way Procrastinate and River keep theirs). Parameters are psycopg
named placeholders (``%(name)s``); nothing is ever formatted into the text.

Only ``sysdb``'s doors (one class per concept: ``members``, ``leadership``, ``claims`` ...) name
a statement. The liveness statements (heartbeats, member timeouts, leader leases) read "now" as
``coalesce(%(now)s::timestamptz, now())``: production passes ``None`` (the database clock), a
test passes its fake clock's time (``SystemDatabase.coordination_clock``).
"""

from __future__ import annotations

import functools
from importlib import resources

__all__ = ["statement"]


@functools.cache
def statement(name: str) -> str:
    """Return the text of ``sql/<name>.sql``, read once and cached."""
    try:
        return resources.files(__package__).joinpath("sql").joinpath(f"{name}.sql").read_text("utf-8")
    except FileNotFoundError:
        raise KeyError(f"no SQL statement named {name!r} in sysdb/sql") from None
