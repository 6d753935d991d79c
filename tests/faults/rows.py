"""Rows a process cannot decode, and rows planted in bulk.

- :func:`vanishing_value`: an object of a class that exists while it is pickled and is gone
  afterwards, exactly like a class from an enqueuer's ``__main__`` or one renamed by a deploy.
- :data:`GARBAGE_INPUTS`: base64 text that is no pickle at all (corrupt data).
- :func:`make_pending_here`: turn a workflow row into a PENDING one owned by an executor (as if
  that executor had died running it), with a fresh ownership epoch.
- :func:`plant_pending_backlog`: many PENDING rows for one executor, in one statement.

They write with plain SQL on the test's own connection: they stand for another process, an
older deploy, or a crash, never for pgfleet itself.
"""

from __future__ import annotations

import base64
import pickle
import sys
import types
from typing import Any

__all__ = ["vanishing_value", "GARBAGE_INPUTS", "make_pending_here", "plant_pending_backlog", "pickled_inputs"]

GARBAGE_INPUTS = base64.b64encode(b"\x80\x05this is not a pickle").decode("ascii")


def vanishing_value(module_name: str = "pgfleet_vanished_module") -> tuple[Any, Any]:
    """``(value, forget)``: an instance of ``<module_name>.Gone``, and a function that makes
    the module vanish; once it is called, unpickling the value fails (ModuleNotFoundError)."""
    module = types.ModuleType(module_name)

    class Gone:
        def __reduce__(self) -> Any:
            return (Gone, ())

    Gone.__module__ = module_name
    Gone.__qualname__ = "Gone"
    module.Gone = Gone  # type: ignore[attr-defined]
    sys.modules[module_name] = module

    def forget() -> None:
        sys.modules.pop(module_name, None)

    return Gone(), forget


def pickled_inputs(*args: Any, **kwargs: Any) -> str:
    """Workflow inputs as pgfleet and DBOS store them."""
    return base64.b64encode(pickle.dumps({"args": args, "kwargs": kwargs})).decode("ascii")


def make_pending_here(conn: Any, workflow_id: str, executor_id: str, *, inputs: str | None = None) -> None:
    """Make a row PENDING under ``executor_id`` outside any queue (so launch recovers it rather
    than requeueing it), optionally replacing its inputs."""
    conn.execute(
        "UPDATE dbos.workflow_status SET status = 'PENDING', executor_id = %s, queue_name = NULL,"
        " owner_epoch = nextval('dbos.pgfleet_epoch_seq'), inputs = coalesce(%s, inputs)"
        " WHERE workflow_uuid = %s",
        (executor_id, inputs, workflow_id),
    )


def plant_pending_backlog(conn: Any, prefix: str, count: int, *, name: str, executor_id: str, inputs: str) -> None:
    """``count`` PENDING workflows ``<prefix>-<i>`` of function ``name`` owned by ``executor_id``."""
    conn.execute(
        "INSERT INTO dbos.workflow_status (workflow_uuid, status, name, executor_id, owner_epoch,"
        " application_version, application_id, application_name, created_at, updated_at,"
        " recovery_attempts, inputs, serialization)"
        " SELECT %(prefix)s || '-' || i, 'PENDING', %(name)s, %(executor_id)s, nextval('dbos.pgfleet_epoch_seq'),"
        " '', '', 'backlog', i, i, 1, %(inputs)s, 'py_pickle' FROM generate_series(1, %(count)s) AS i",
        {"prefix": prefix, "name": name, "executor_id": executor_id, "inputs": inputs, "count": count},
    )
