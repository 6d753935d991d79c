"""The leader's retention duty for one executor, from its configuration (issue #13)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cluster.coordination.retention import RetentionDuty
from sysdb.retention import PruneBatch

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["retention_duties"]


def retention_duties(executor: Executor) -> list[Callable[[int], None]]:
    """``[RetentionDuty]`` when ``workflow_retention_sec`` is configured, else nothing: without
    the key the leader never deletes a workflow."""
    config = executor.config
    if config.workflow_retention_sec is None:
        return []

    def forget_transaction_outputs(batch: PruneBatch) -> None:
        # As a delete does: a transaction output in the application database has no foreign
        # key to its workflow, so it is removed by id.
        if executor.app_db is not None:
            executor.app_db.admin.delete_transaction_outputs(list(batch.workflow_ids))

    return [
        RetentionDuty(
            executor.db,
            executor.executor_id,
            config.workflow_retention_sec,
            config.workflow_retention_statuses,
            config.workflow_retention_batch_size,
            on_pruned=forget_transaction_outputs,
        )
    ]
