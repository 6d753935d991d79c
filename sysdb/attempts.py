"""The attempt ledger (``dbos.pgfleet_step_attempts``): one row per start of a step body, so
that "a completed step never ran again" and "a fenced owner started no body after its workflow
moved" can be checked for any app. Written only when the ``attempt_ledger`` switch is on."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .door import Door, row_to

if TYPE_CHECKING:
    from .database import DictConnection

__all__ = ["Attempts", "StepAttempt"]


@dataclass(frozen=True)
class StepAttempt:
    """One recorded start of a step body."""

    id: int
    workflow_uuid: str
    function_id: int
    function_name: str
    executor_id: str
    owner_epoch: int
    pid: int
    attempt: int
    owned: bool  # the database still gave the workflow to this owner: the body ran (or may have)
    started_at: datetime.datetime


class Attempts(Door):
    """Record and read the starts of step bodies."""

    def record(
        self, workflow_id: str, function_id: int, function_name: str, executor_id: str, owner_epoch: int, pid: int,
        attempt: int, connection: DictConnection | None = None,
    ) -> bool:
        """Record that the body of step ``function_id`` is about to start (``attempt`` counts
        from 1); its own short autocommitted statement, deliberately not fenced. On
        ``connection`` (outside any transaction of it: a transaction's own, just before it
        begins, so the row needs no second connection of the pool) when given, once.

        Returns whether the workflow's row still named this owner as the row was written: when
        it did not, the caller must not start the body (it was taken over meanwhile)."""
        params = {
            "workflow_uuid": workflow_id, "function_id": function_id, "function_name": function_name,
            "executor_id": executor_id, "owner_epoch": owner_epoch, "pid": pid, "attempt": attempt,
        }
        if connection is not None:
            rows = self._db._execute_on(connection, "record_step_attempt", params)
        else:
            rows = self._execute("record_step_attempt", params)
        return bool(rows[0]["owned"])

    def list_for(self, workflow_id: str) -> list[StepAttempt]:
        """Every recorded start of a step body of ``workflow_id``, by position then start."""
        return [row_to(StepAttempt, r) for r in self._execute("list_step_attempts", {"workflow_uuid": workflow_id})]
