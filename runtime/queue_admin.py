"""Database-backed queues and application versions, for ``DBOS`` and ``DBOSClient`` alike:
functions of the system database (and of the caller's application name).

Queue, schedule and version names are global in a system database, each row owned by one
application (or unclaimed, ``application_name`` NULL: everybody's). Writing a row another
application owns raises DBOS's error; an unclaimed one is claimed by the writer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, TypedDict

from sysdb.app_versions import VersionRow
from sysdb.queue_rows import OwnedWrite, QueueRow

from .errors import DBOSException
from .logs import logger
from .queues import INTERNAL_QUEUE_NAME, Queue, QueueConflictResolution, QueueRateLimit, check_queue_settings

if TYPE_CHECKING:
    from sysdb import SystemDatabase

__all__ = [
    "VersionInfo", "ApplicationRowCounts", "register_queue", "retrieve_queue", "list_queues", "log_served_queues",
    "record_version", "list_versions", "latest_version", "promote_version", "rename_application",
]

# DBOS's default batch of terminal workflows re-owned per transaction by a rename.
DEFAULT_RENAME_BATCH_SIZE = 10_000
_APP_NAME = re.compile(r"^[a-z0-9_-]{3,30}$")


class VersionInfo(TypedDict):
    """One application version, as DBOS lists it (times in epoch milliseconds)."""

    version_id: str
    version_name: str
    version_timestamp: int
    created_at: int
    application_name: str | None  # None: unclaimed


class ApplicationRowCounts(TypedDict):
    """How many rows ``rename_application`` moved, by table."""

    queues: int
    schedules: int
    versions: int
    workflows: int
    steps: int


def _check_owner(write: OwnedWrite, kind: str, name: str, owner: str | None) -> None:
    """Raise DBOS's error when the row ``name`` belongs to another application than ``owner``."""
    current = write.previous_owner
    if not write.existed or current is None or owner is None or current == owner:
        return
    advice = (
        f"set a distinct application_version for '{owner}'"
        if kind == "Application version"
        else f"give '{owner}' a different {kind.lower()} name"
    )
    raise DBOSException(
        f"{kind} '{name}' is already registered by application '{current}' in this system database. "
        f"{kind} names must be unique across applications sharing a system database. Either {advice}, "
        f"or, if '{current}' was renamed to '{owner}', re-own its rows first with dbos rename-application"
    )


# -- queues ----------------------------------------------------------------------------------


def register_queue(
    db: SystemDatabase,
    name: str,
    *,
    owner: str | None,
    update_existing: bool,
    concurrency: int | None,
    limiter: QueueRateLimit | None,
    worker_concurrency: int | None,
    priority_enabled: bool,
    partition_queue: bool,
    polling_interval_sec: float,
    client: bool,
    listening: bool | None = None,
) -> Queue:
    """Write the queue's row (see ``DBOS.register_queue``) and return it as stored. A new
    queue is logged in DBOS's words: whether this process serves it (``listening``), or, from
    a client (None), its settings alone."""
    check_queue_settings(concurrency, worker_concurrency, polling_interval_sec, limiter)
    row = QueueRow(
        name=name, concurrency=concurrency, worker_concurrency=worker_concurrency,
        rate_limit_max=limiter["limit"] if limiter else None,
        rate_limit_period_sec=float(limiter["period"]) if limiter else None,
        priority_enabled=bool(priority_enabled), partition_queue=bool(partition_queue),
        polling_interval_sec=float(polling_interval_sec), application_name=owner,
    )
    write = db.queue_rows.upsert(row, update_existing=update_existing)
    _check_owner(write, "Queue", name, owner)
    db.claims.wake_queue(name)  # executors that do not know the queue yet look for it now
    queue = retrieve_queue(db, name, client=client)
    if queue is None:
        raise DBOSException(f"Queue {name} not found in the database")  # deleted meanwhile
    if not write.existed:
        if listening is not None:
            logger.info("Registered and listening to new queue:" if listening else "Registered new queue (not listening):")
        logger.info(queue.describe())
    return queue


def log_served_queues(db: SystemDatabase, code_queues: list[Queue], application_name: str, serves: Callable[[str], bool]) -> None:
    """At launch, as DBOS: the queues this process serves (those ``serves`` accepts), of the
    code and the application's database-backed ones, one line each."""
    queues = {queue.name: queue for queue in code_queues}
    try:
        for queue in list_queues(db, application_name, None, client=False):
            queues.setdefault(queue.name, queue)
    except Exception as exc:  # a log line never fails a launch
        logger.warning(f"Exception listing database-backed queues: {exc}")
    queues.pop(INTERNAL_QUEUE_NAME, None)
    listed = [queue for name, queue in queues.items() if serves(name)]
    logger.info(f"Listening to {len(listed)} queues:")
    for queue in listed:
        logger.info(queue.describe())


def retrieve_queue(db: SystemDatabase, name: str, *, client: bool) -> Queue | None:
    row = db.queue_rows.get(name)
    return None if row is None else Queue._from_row(row, db if client else None)


def list_queues(db: SystemDatabase, application_name: str | list[str] | None, default: str | None, *, client: bool) -> list[Queue]:
    """The queues of these applications plus the unclaimed ones (default: the caller's own;
    a caller with no application sees every queue)."""
    names = application_name if application_name is not None else default
    owners = [names] if isinstance(names, str) else (list(names) if names else None)
    return [Queue._from_row(row, db if client else None) for row in db.queue_rows.list(owners)]


def update_if_latest(db: SystemDatabase, on_conflict: QueueConflictResolution, application_name: str, version: str) -> bool:
    """Whether ``register_queue`` overwrites an existing row, as DBOS decides."""
    if on_conflict == "always_update":
        return True
    if on_conflict == "never_update":
        return False
    latest = db.app_versions.latest(application_name)
    return latest is None or latest.version_name == version


# -- application versions ----------------------------------------------------------------------


def _info(row: VersionRow) -> VersionInfo:
    return VersionInfo(
        version_id=row.version_id, version_name=row.version_name, version_timestamp=int(row.version_timestamp),
        created_at=int(row.created_at), application_name=row.application_name,
    )


def record_version(db: SystemDatabase, version: str, application_name: str) -> None:
    """At launch, as DBOS: record this version (its first launch stamps its time) and warn
    when it is not the application's latest. A version name another application registered
    is left to it with a warning, where DBOS refuses to launch: a pgfleet fleet often runs
    several applications (enqueuers, workers) under one configured version."""
    try:
        _check_owner(db.app_versions.register(version, application_name), "Application version", version, application_name)
    except DBOSException as exc:
        logger.warning(str(exc))
        return
    latest = db.app_versions.latest(application_name)
    if latest is not None and latest.version_name != version:
        logger.warning(
            f"Current version '{version}' is not the latest version. Latest version is '{latest.version_name}'."
        )


def list_versions(db: SystemDatabase, application_name: str | None) -> list[VersionInfo]:
    return [_info(row) for row in db.app_versions.list(application_name)]


def latest_version(db: SystemDatabase, application_name: str | None) -> VersionInfo:
    row = db.app_versions.latest(application_name)
    if row is None:
        raise DBOSException("No application versions found")
    return _info(row)


def promote_version(db: SystemDatabase, version_name: str, application_name: str | None) -> None:
    """Make ``version_name`` the latest (a name nobody registered changes nothing, as in DBOS)."""
    _check_owner(db.app_versions.promote(version_name, application_name), "Application version", version_name, application_name)


def rename_application(
    db: SystemDatabase, old_name: str | None, new_name: str, *, batch_size: int | None, adopt_unclaimed_rows: bool
) -> ApplicationRowCounts:
    """Give ``new_name`` the rows of ``old_name`` and/or the unclaimed ones (DBOS's checks)."""
    if old_name is not None and not old_name:
        raise DBOSException("The application's previous name cannot be empty.")
    if old_name is None and not adopt_unclaimed_rows:
        raise DBOSException("Nothing to re-own: name the application to rename, adopt unclaimed rows, or both.")
    if not isinstance(new_name, str) or not _APP_NAME.match(new_name):
        raise DBOSException(
            f"Invalid application name '{new_name}'. Application names must be between 3 and 30 characters long "
            "and contain only lowercase letters, numbers, dashes, and underscores."
        )
    if old_name == new_name:
        raise DBOSException(f"Application '{new_name}' already holds that name; nothing to rename.")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    counts = db.app_versions.rename(old_name, new_name, batch_size=batch_size, adopt_unclaimed=adopt_unclaimed_rows)
    return ApplicationRowCounts(
        queues=counts.queues, schedules=counts.schedules, versions=counts.versions,
        workflows=counts.workflows, steps=counts.steps,
    )
