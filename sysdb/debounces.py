"""The door to debouncing (``Debouncer.debounce``): push back a debounced DELAYED workflow and
give it new inputs, or say who holds the debounce key.

A debounced workflow is an ordinary DELAYED workflow whose deduplication id is its debounce key
and whose ``is_debounced`` flag is set (``db.workflows.enqueue`` with such a placement). The
unique index on (queue, deduplication id) lets one workflow hold a key across the whole fleet;
the leader's promotion out of DELAYED clears the key (``leader_housekeeping.sql``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .door import Door, row_to
from .fencing import with_own_step

if TYPE_CHECKING:
    from .steps import StepRecord, StepRow

__all__ = ["Debounces", "Bounce", "BounceResult"]


@dataclass(frozen=True)
class Bounce:
    """One debounce of ``workflow_name`` on ``queue_name`` under ``deduplication_id``: the new
    wake-up time (epoch ms, database clock) and the new inputs (serialized)."""

    workflow_name: str
    queue_name: str
    deduplication_id: str
    delay_until_ms: int
    inputs: str
    serialization: str | None
    application_name: str | None


@dataclass(frozen=True)
class BounceResult:
    """The workflow that was pushed back, or (none was) the key's holder, if any."""

    bounced_workflow_id: str | None
    holder_workflow_id: str | None
    holder_is_debounced: bool
    holder_workflow_name: str | None
    holder_application_name: str | None


class Debounces(Door):
    """Debouncing workflow starts."""

    def bounce(
        self,
        bounce: Bounce,
        step_for: Callable[[BounceResult], StepRecord] | None = None,
        on_own: Callable[[StepRow], BounceResult] | None = None,
    ) -> BounceResult:
        """Push back the key's debounced workflow, or return its holder. Inside a workflow
        (``step_for`` builds the fenced step that records the result) the bounce and its step
        commit together, so a recovered workflow never bounces twice; a retry after a lost
        COMMIT reply reads its own step back through ``on_own``."""
        params = vars(bounce)
        if step_for is None:
            return row_to(BounceResult, self._execute("debounce_delayed_workflow", params)[0])

        def run() -> BounceResult:
            with self._db.pooled() as conn, conn.transaction():
                result = row_to(BounceResult, self._db._execute_on(conn, "debounce_delayed_workflow", params)[0])
                self._db.steps.record(step_for(result), connection=conn)
                return result

        def own(recorded: StepRow) -> BounceResult:
            assert on_own is not None
            return on_own(recorded)

        return with_own_step(self._db, run, step_for(_NOTHING), own)


# A placeholder result: with_own_step reads only the step's key and name from its record.
_NOTHING = BounceResult(None, None, False, None, None)
