"""``DBOSConfig``: the configuration dictionary, its validation and its defaults.

DBOS programs pass a ``DBOSConfig`` to ``DBOS(config=...)``; pgfleet accepts every DBOS 2.x key
(those that configure things pgfleet does not have, such as OpenTelemetry export, are accepted
and ignored) plus its own. A key that neither knows is an error naming the key, with the
closest known key as a suggestion: a typo must never silently fall back to a default.
"""

from __future__ import annotations

import difflib
import math
import os
import socket
from dataclasses import dataclass
from typing import Any, TypedDict

from sysdb.links import SessionTimeouts
from sysdb.retention import DEFAULT_PRUNE_BATCH_SIZE, PRUNABLE_STATUSES, check_prune_statuses

from .errors import DBOSConfigError

__all__ = ["DBOSConfig", "ResolvedConfig", "resolve_config", "default_executor_id", "connection_bounds"]


class DBOSConfig(TypedDict, total=False):
    """The configuration of one process, DBOS 2.x keys first, pgfleet's own after."""

    name: str
    system_database_url: str | None
    application_database_url: str | None
    database_url: str | None
    sys_db_pool_size: int | None
    db_engine_kwargs: dict[str, Any] | None
    sys_db_engine_kwargs: dict[str, Any] | None
    system_database_engine: Any
    dbos_system_schema: str | None
    log_level: str | None
    executor_id: str | None
    application_version: str | None
    max_executor_threads: int | None
    run_admin_server: bool | None
    admin_port: int | None
    enable_otlp: bool | None
    otlp_traces_endpoints: list[str] | None
    otlp_logs_endpoints: list[str] | None
    otlp_attributes: dict[str, str] | None
    otel_attribute_format: str | None  # "legacy" (DBOS's default) or "semconv" span attribute names
    conductor_key: str | None
    conductor_url: str | None
    serializer: Any
    enable_patching: bool | None
    notification_listener_polling_interval_sec: float | None
    scheduler_polling_interval_sec: float | None
    use_listen_notify: bool | None
    # pgfleet's own keys
    embedded_data_dir: str | None
    database_retry_timeout_sec: float | None
    database_statement_timeout_sec: float | None
    database_idle_in_transaction_timeout_sec: float | None
    transaction_statement_timeout_sec: float | None
    transaction_idle_timeout_sec: float | None
    prepare_statements: bool | None
    heartbeat_interval_sec: float | None
    member_timeout_sec: float | None
    queues: list[str] | None
    supervisor_id: str | None
    attempt_ledger: bool | None
    # Retention (issue #13): the leader prunes finished workflows older than this many seconds.
    workflow_retention_sec: float | None
    workflow_retention_statuses: list[str] | None
    workflow_retention_batch_size: int | None


# DBOS keys that configure features pgfleet does not have; accepted so DBOS programs run as is.
_IGNORED_DBOS_KEYS = frozenset(
    {
        "db_engine_kwargs",
        "sys_db_engine_kwargs",
        "system_database_engine",
        "run_admin_server",
        "admin_port",
        # (enable_otlp, otlp_traces_endpoints, otlp_logs_endpoints, otlp_attributes and
        # otel_attribute_format are honoured: runtime/tracing.py and runtime/otlp_logs.py read
        # them from the raw config.)
        "conductor_key",
        "conductor_url",
    }
)
KNOWN_KEYS = frozenset(DBOSConfig.__annotations__)

EXECUTOR_ID_ENVIRONMENT_VARIABLES = ("PGFLEET_EXECUTOR_ID", "DBOS__VMID")


def default_executor_id(app_name: str) -> str:
    """``<hostname>-<app name>``: stable across restarts of the same program on the same host,
    so a program that is killed and started again recovers its own PENDING workflows with no
    configuration. Run several copies of one app on one host with distinct ``executor_id``s
    (the supervisor gives each worker slot its own)."""
    return f"{socket.gethostname()}-{app_name}"


@dataclass(frozen=True)
class ResolvedConfig:
    """The configuration after validation and defaults; what the runtime reads."""

    name: str
    system_database_url: str | None
    application_database_url: str | None
    executor_id: str
    application_version: str | None
    max_executor_threads: int
    sys_db_pool_size: int
    log_level: str
    embedded_data_dir: str | None
    database_retry_timeout_sec: float
    # Server-side limits (seconds, 0 = none; see sysdb/links.py): pgfleet's own statements and
    # transactions, then @DBOS.transaction bodies.
    database_statement_timeout_sec: float
    database_idle_in_transaction_timeout_sec: float
    transaction_statement_timeout_sec: float
    transaction_idle_timeout_sec: float
    prepare_statements: bool
    use_listen_notify: bool
    notification_listener_polling_interval_sec: float
    # How often the leader re-reads the database-backed schedules (DBOS.create_schedule) that
    # another process may have created or resumed; its own process's changes are read at once.
    scheduler_polling_interval_sec: float
    heartbeat_interval_sec: float
    member_timeout_sec: float
    queues: tuple[str, ...] | None
    supervisor_id: str | None
    # Record every start of a step body in dbos.pgfleet_step_attempts (issue #12; off by default).
    attempt_ledger: bool
    # Retention (issue #13): None = the leader prunes nothing; else finished workflows (of these
    # statuses) created more than this long ago go, ``workflow_retention_batch_size`` at a time.
    workflow_retention_sec: float | None
    workflow_retention_statuses: tuple[str, ...]
    workflow_retention_batch_size: int
    raw: dict[str, Any]


def _typed(config: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise DBOSConfigError(f"config key {key!r} must be a number, not a bool")
    if not isinstance(value, kind):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise DBOSConfigError(
            f"config key {key!r} must be {expected}, got {type(value).__name__} {value!r}"
        )
    return value


def _positive(key: str, value: float) -> float:
    if value <= 0:
        raise DBOSConfigError(f"config key {key!r} must be greater than 0, got {value!r}")
    return value


def _non_negative(config: dict[str, Any], key: str, default: float) -> float:
    value = float(_typed(config, key, (int, float), default))
    if value < 0:
        raise DBOSConfigError(f"config key {key!r} must be 0 (no limit) or more, got {value!r}")
    return value


# pgfleet's leader re-reads the database-backed schedules this often unless told otherwise
# (DBOS's scheduler thread polls every 30 s, every second in its first minute).
DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC = 10.0


def _scheduler_polling_interval(config: dict[str, Any]) -> float:
    # As DBOS, 0 (or None) means the default; what DBOS would busy-loop on is refused here.
    value = float(_typed(config, "scheduler_polling_interval_sec", (int, float), 0.0))
    if value == 0:
        return DEFAULT_SCHEDULER_POLLING_INTERVAL_SEC
    if not math.isfinite(value) or value < 0:
        raise DBOSConfigError(f"config key 'scheduler_polling_interval_sec' must be a positive number of seconds, got {value!r}")
    return value


def resolve_config(config: Any) -> ResolvedConfig:
    """Validate a ``DBOSConfig`` and fill in defaults. Raises :class:`DBOSConfigError`."""
    if not isinstance(config, dict):
        raise DBOSConfigError(f"DBOS(config=...) takes a dict (DBOSConfig), got {type(config).__name__}")
    _check_known_keys(config)
    name = config.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DBOSConfigError("config key 'name' is required: a non-empty application name")
    # In this order, so that a config with several mistakes is refused for the same one as ever.
    executor_id = _executor_id(config, name)
    queues = _queues(config)
    log_level = _log_level(config)
    heartbeat, member_timeout = _membership_timing(config)
    retention_sec, retention_statuses, retention_batch = _retention(config)
    return ResolvedConfig(
        name=name,
        system_database_url=_typed(config, "system_database_url", str, None),
        application_database_url=_typed(config, "application_database_url", str, None)
        or _typed(config, "database_url", str, None),
        executor_id=executor_id,
        # As DBOS: with patching on, every deploy shares one version, so old executions recover on new code.
        application_version=_typed(config, "application_version", str, None)
        or ("PATCHING_ENABLED" if _typed(config, "enable_patching", bool, False) else None),
        max_executor_threads=int(_positive("max_executor_threads", _typed(config, "max_executor_threads", int, 64))),
        sys_db_pool_size=int(_positive("sys_db_pool_size", _typed(config, "sys_db_pool_size", int, 20))),
        log_level=log_level,
        embedded_data_dir=_typed(config, "embedded_data_dir", str, None),
        database_retry_timeout_sec=_positive(
            "database_retry_timeout_sec", float(_typed(config, "database_retry_timeout_sec", (int, float), 60.0))
        ),
        database_statement_timeout_sec=_non_negative(config, "database_statement_timeout_sec", 120.0),
        database_idle_in_transaction_timeout_sec=_non_negative(config, "database_idle_in_transaction_timeout_sec", 5.0),
        transaction_statement_timeout_sec=_non_negative(config, "transaction_statement_timeout_sec", 0.0),
        transaction_idle_timeout_sec=_non_negative(config, "transaction_idle_timeout_sec", 60.0),
        prepare_statements=_typed(config, "prepare_statements", bool, True),
        use_listen_notify=_typed(config, "use_listen_notify", bool, True),
        notification_listener_polling_interval_sec=_positive(
            "notification_listener_polling_interval_sec",
            float(_typed(config, "notification_listener_polling_interval_sec", (int, float), 1.0)),
        ),
        scheduler_polling_interval_sec=_scheduler_polling_interval(config),
        heartbeat_interval_sec=heartbeat,
        member_timeout_sec=member_timeout,
        queues=queues,
        supervisor_id=_typed(config, "supervisor_id", str, None),
        attempt_ledger=_attempt_ledger(config),
        workflow_retention_sec=retention_sec,
        workflow_retention_statuses=retention_statuses,
        workflow_retention_batch_size=retention_batch,
        raw=dict(config),
    )


def _retention(config: dict[str, Any]) -> tuple[float | None, tuple[str, ...], int]:
    """The leader's retention: how old (seconds, or None: keep everything), which statuses,
    how many per batch. Only finished statuses may be named."""
    seconds = _typed(config, "workflow_retention_sec", (int, float), None)
    if seconds is not None:
        seconds = _positive("workflow_retention_sec", float(seconds))
    statuses = config.get("workflow_retention_statuses")
    chosen: tuple[str, ...]
    if statuses is None:
        chosen = PRUNABLE_STATUSES
    elif not isinstance(statuses, (list, tuple)):
        raise DBOSConfigError(f"config key 'workflow_retention_statuses' must be a list of statuses, got {statuses!r}")
    else:
        try:
            chosen = check_prune_statuses(statuses)
        except ValueError as exc:
            raise DBOSConfigError(f"config key 'workflow_retention_statuses': {exc}") from None
    batch = int(_positive("workflow_retention_batch_size", _typed(config, "workflow_retention_batch_size", int, DEFAULT_PRUNE_BATCH_SIZE)))
    return seconds, chosen, batch


ATTEMPT_LEDGER_ENVIRONMENT_VARIABLE = "PGFLEET_ATTEMPT_LEDGER"


def _attempt_ledger(config: dict[str, Any]) -> bool:
    """The config key when set, else the environment (so a chaos run turns it on for any app)."""
    if config.get("attempt_ledger") is not None:
        return bool(_typed(config, "attempt_ledger", bool, False))
    value = os.environ.get(ATTEMPT_LEDGER_ENVIRONMENT_VARIABLE, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise DBOSConfigError(f"environment variable {ATTEMPT_LEDGER_ENVIRONMENT_VARIABLE} must be 1 or 0, got {value!r}")


def _check_known_keys(config: dict[str, Any]) -> None:
    """Refuse a key that neither DBOS nor pgfleet knows, naming the closest known one."""
    unknown = sorted(set(config) - KNOWN_KEYS)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise DBOSConfigError(f"unknown config key{'s' if len(hints) > 1 else ''}: {', '.join(hints)}")


def _executor_id(config: dict[str, Any], name: str) -> str:
    """The configured id, else the environment's, else ``<hostname>-<app name>``."""
    executor_id: str | None = _typed(config, "executor_id", str, None)
    if executor_id is None:
        executor_id = next(
            (os.environ[v] for v in EXECUTOR_ID_ENVIRONMENT_VARIABLES if os.environ.get(v)),
            default_executor_id(name),
        )
    if not executor_id.strip():
        raise DBOSConfigError("config key 'executor_id' must not be empty")
    return executor_id


def _queues(config: dict[str, Any]) -> tuple[str, ...] | None:
    queues = config.get("queues")
    if queues is None:
        return None
    if not isinstance(queues, (list, tuple)) or not all(isinstance(q, str) for q in queues):
        raise DBOSConfigError(f"config key 'queues' must be a list of queue names, got {queues!r}")
    return tuple(queues)


def _log_level(config: dict[str, Any]) -> str:
    log_level: str = _typed(config, "log_level", str, "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise DBOSConfigError(f"config key 'log_level' must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
    return log_level


def _membership_timing(config: dict[str, Any]) -> tuple[float, float]:
    """The heartbeat interval and the member timeout, which must leave room for a late beat."""
    heartbeat = _positive("heartbeat_interval_sec", float(_typed(config, "heartbeat_interval_sec", (int, float), 1.0)))
    member_timeout = _positive("member_timeout_sec", float(_typed(config, "member_timeout_sec", (int, float), 5.0)))
    if member_timeout <= 2 * heartbeat:
        raise DBOSConfigError(
            f"member_timeout_sec ({member_timeout}) must be more than twice heartbeat_interval_sec "
            f"({heartbeat}), or one late heartbeat would declare a live executor dead"
        )
    return heartbeat, member_timeout


def connection_bounds(config: ResolvedConfig) -> dict[str, Any]:
    """The ``SystemDatabase`` arguments that bound every connection of an executor: a link
    silent for the member timeout is dead (the member is being declared dead anyway), and the
    server-side limits of its sessions."""
    return {
        "dead_link_timeout_sec": config.member_timeout_sec,
        "timeouts": SessionTimeouts(
            statement_timeout_sec=config.database_statement_timeout_sec,
            idle_in_transaction_timeout_sec=config.database_idle_in_transaction_timeout_sec,
            user_statement_timeout_sec=config.transaction_statement_timeout_sec,
            user_idle_in_transaction_timeout_sec=config.transaction_idle_timeout_sec,
        ),
    }
