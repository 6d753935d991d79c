"""The door to workflow streams (``dbos.streams``: ``DBOS.write_stream``/``read_stream``).

Every write is fenced on the workflow's ownership; a write from the workflow body commits with
its own step row, so a replay skips it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .door import Door
from .fencing import ownership_lost, with_own_step

if TYPE_CHECKING:
    from .database import Row
    from .steps import StepRecord

__all__ = ["Streams", "StreamWrite", "StreamValue"]


@dataclass(frozen=True)
class StreamWrite:
    """A value appended to a workflow's stream ``key`` by its owner (executor and epoch), at
    step position ``function_id`` (the writing step's, or the write's own)."""

    workflow_id: str
    executor_id: str
    owner_epoch: int
    function_id: int
    key: str
    value: str
    serialization: str | None


@dataclass(frozen=True)
class StreamValue:
    """One value of a stream, as stored (serialized), at its offset."""

    offset: int
    value: str
    serialization: str | None


class Streams(Door):
    """Append to streams (fenced) and read them in order."""

    def write(self, write: StreamWrite, step: StepRecord | None = None) -> int:
        """Append to a workflow's stream, fenced; with ``step`` (a write from the workflow body)
        its step row commits with it. Returns the offset. Raises :class:`OwnershipLostError`."""
        params = dict(vars(write))

        def run() -> list[Row]:
            with self._db.pooled() as conn, conn.transaction():
                if step is not None:
                    self._db.steps.record(step, connection=conn)
                return self._db._execute_on(conn, "write_stream_value", params)

        # A retry that meets its own step row reads the offset its first attempt wrote.
        rows = with_own_step(self._db, run, step, lambda _recorded: self._execute("get_stream_offset_at_step", params))
        if not rows:
            raise ownership_lost(self._db, write.workflow_id, write.executor_id, write.owner_epoch)
        return int(rows[0]["offset"])

    def read(self, workflow_id: str, key: str, from_offset: int) -> list[StreamValue]:
        """The values of stream ``key`` from ``from_offset`` on, in order."""
        rows = self._execute("read_stream_values", {"workflow_id": workflow_id, "key": key, "from_offset": from_offset})
        return [StreamValue(**row) for row in rows]
