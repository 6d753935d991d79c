"""Settings of ``pgfleet supervise`` (and what ``pgfleet check`` validates).

Three layers, each overriding the one below it::

    flags  >  the TOML file (--config FILE)  >  environment variables  >  defaults

A TOML file holds the supervisor's own keys and the ``DBOSConfig`` keys every worker gets::

    app = "shop.worker"                 # what to supervise (the APP argument)
    workers = 4                         # worker processes on this node
    name = "node-a"                     # the node: worker slots are executors node-a-0..node-a-3
    queues = ["orders", "emails"]       # which queues this node serves (default: all declared)
    grace = 30                          # seconds a stopping worker gets to finish its workflows
    metrics_port = 9187
    boot_deadline = 30                  # seconds a worker gets to launch
    system_database_url = "postgresql://fleet@db.internal:5432/pgfleet"
    log_level = "INFO"

``name`` is the node name (the application's name stays what its code passes to
``DBOS(config=...)``), ``queues`` is the supervisor's, and ``executor_id`` / ``supervisor_id``
are set per worker slot by the supervisor, so a file may not set them. Any other key is an
error naming the key and the file, with the closest known key as a hint.

Environment variables: ``PGFLEET_APP``, ``PGFLEET_WORKERS``, ``PGFLEET_NAME``, ``PGFLEET_QUEUES``
(comma-separated), ``PGFLEET_GRACE``, ``PGFLEET_METRICS_PORT``, ``PGFLEET_BOOT_DEADLINE``,
``PGFLEET_SYSTEM_DATABASE_URL`` (else ``DBOS_SYSTEM_DATABASE_URL``), ``PGFLEET_EMBEDDED_DATA_DIR``
and ``PGFLEET_LOG_LEVEL``. An empty variable counts as unset.

This module imports nothing from ``runtime`` at import time; it reads ``runtime.config`` when
called.
"""

from __future__ import annotations

import difflib
import math
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from runtime.config import KNOWN_KEYS, resolve_config
from runtime.errors import DBOSConfigError
from sysdb import InvalidDatabaseUrlError, validate_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "SettingsError",
    "SUPERVISOR_KEYS",
    "ENVIRONMENT_VARIABLES",
    "load_settings",
    "read_config_file",
    "validate_worker_config",
]

# The supervisor's own keys and their defaults (``name`` defaults to the host name).
SUPERVISOR_KEYS: dict[str, Any] = {
    "app": None,
    "workers": 1,
    "name": None,
    "queues": None,
    "grace": 30.0,
    "metrics_port": None,
    "boot_deadline": 30.0,
}

# DBOSConfig keys the supervisor sets itself, per worker slot.
_SUPERVISOR_OWNED = {
    "executor_id": "the supervisor gives worker slots the executor ids NODE-0..NODE-<workers-1>; set 'name' (the node) instead",
    "supervisor_id": "the supervisor sets it for its workers",
}

# Environment variable → settings key. The first variable set wins for a key.
ENVIRONMENT_VARIABLES: tuple[tuple[str, str], ...] = (
    ("PGFLEET_APP", "app"),
    ("PGFLEET_WORKERS", "workers"),
    ("PGFLEET_NAME", "name"),
    ("PGFLEET_QUEUES", "queues"),
    ("PGFLEET_GRACE", "grace"),
    ("PGFLEET_METRICS_PORT", "metrics_port"),
    ("PGFLEET_BOOT_DEADLINE", "boot_deadline"),
    ("PGFLEET_SYSTEM_DATABASE_URL", "system_database_url"),
    ("DBOS_SYSTEM_DATABASE_URL", "system_database_url"),
    ("PGFLEET_EMBEDDED_DATA_DIR", "embedded_data_dir"),
    ("PGFLEET_LOG_LEVEL", "log_level"),
)

# How the CLI spells the flags whose names differ from their settings keys (for messages).
_FLAG_NAMES = {"system_database_url": "--database-url", "embedded_data_dir": "--data-dir", "app": "APP"}

# The DBOS application name placed in the worker config only to validate it.
_PLACEHOLDER_APP_NAME = "pgfleet-settings"


class SettingsError(Exception):
    """The settings are invalid (exit code 2): the message names the key and where it came from."""

    exit_code = 2


def _worker_keys() -> frozenset[str]:
    return frozenset(KNOWN_KEYS) - set(SUPERVISOR_KEYS) - set(_SUPERVISOR_OWNED)


def _allowed_keys() -> frozenset[str]:
    return _worker_keys() | set(SUPERVISOR_KEYS)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The top-level table of a TOML file, its keys checked. Raises :class:`SettingsError`."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
    except FileNotFoundError:
        raise SettingsError(f"config file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise SettingsError(f"config file {str(path)!r} is a directory") from None
    except OSError as exc:
        raise SettingsError(f"cannot read config file {str(path)!r}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"config file {str(path)!r} is not UTF-8 text: {exc}") from None
    allowed = _allowed_keys()
    for key in data:
        if key in _SUPERVISOR_OWNED:
            raise SettingsError(f"config file {str(path)!r}: key {key!r} cannot be set here: {_SUPERVISOR_OWNED[key]}")
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"config file {str(path)!r}: unknown key {key!r}{hint}")
    return data


# -- typing of the supervisor's keys ---------------------------------------------------------


def _as_int(key: str, value: Any, origin: str, text: bool) -> int:
    if isinstance(value, str) and text:
        try:
            return int(value.strip())
        except ValueError:
            raise SettingsError(f"{origin}: {key!r} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"{origin}: {key!r} must be an integer, got {type(value).__name__} {value!r}")
    return value


def _as_float(key: str, value: Any, origin: str, text: bool) -> float:
    if isinstance(value, str) and text:
        try:
            number = float(value.strip())
        except ValueError:
            raise SettingsError(f"{origin}: {key!r} must be a number of seconds, got {value!r}") from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SettingsError(f"{origin}: {key!r} must be a number of seconds, got {type(value).__name__} {value!r}")
    else:
        number = float(value)
    if not math.isfinite(number):
        raise SettingsError(f"{origin}: {key!r} must be a finite number, got {value!r}")
    return number


def _as_str(key: str, value: Any, origin: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{origin}: {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _as_queues(value: Any, origin: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(q.strip() for q in value.split(",") if q.strip())
    if isinstance(value, (list, tuple)):
        names: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise SettingsError(f"{origin}: 'queues' must be a list of queue names, got {value!r}")
            names.extend(q.strip() for q in item.split(",") if q.strip())
        return tuple(names)
    raise SettingsError(f"{origin}: 'queues' must be a list of queue names (or a comma-separated string), got {value!r}")


def _typed(key: str, value: Any, origin: str, text: bool = False) -> Any:
    """A supervisor key's value, checked; ``text``: it comes from the environment, so numbers
    are given as strings and converted (a TOML file must use TOML's own numbers)."""
    if key == "workers":
        workers = _as_int(key, value, origin, text)
        if workers < 1:
            raise SettingsError(f"{origin}: 'workers' must be at least 1, got {workers}")
        return workers
    if key in ("app", "name"):
        string = _as_str(key, value, origin)
        if key == "name" and any(c.isspace() for c in string):
            raise SettingsError(f"{origin}: 'name' (the node name) must not contain whitespace, got {string!r}")
        return string
    if key == "queues":
        return _as_queues(value, origin)
    if key in ("grace", "boot_deadline"):
        seconds = _as_float(key, value, origin, text)
        if seconds < 0 or (key == "boot_deadline" and seconds == 0):
            limit = "greater than 0" if key == "boot_deadline" else "0 or more"
            raise SettingsError(f"{origin}: {key!r} must be {limit}, got {seconds:g}")
        return seconds
    if key == "metrics_port":
        port = _as_int(key, value, origin, text)
        if not 0 <= port <= 65535:
            raise SettingsError(f"{origin}: 'metrics_port' must be a TCP port (0-65535), got {port}")
        return port
    return value


def validate_worker_config(worker_config: Mapping[str, Any], sources: Mapping[str, str] | None = None) -> None:
    """Check the workers' DBOSConfig keys with ``runtime.config.resolve_config``.

    Raises :class:`SettingsError` whose message says where the offending values came from.
    """
    try:
        resolve_config({"name": _PLACEHOLDER_APP_NAME, **worker_config})
    except DBOSConfigError as exc:
        message = str(exc)
        origins = sorted({sources[k] for k in worker_config if sources and k in sources and repr(k) in message})
        where = f" (from {', '.join(origins)})" if origins else ""
        raise SettingsError(f"invalid worker config{where}: {message}") from None
    url = worker_config.get("system_database_url")
    if url:
        try:
            validate_url(url)
        except InvalidDatabaseUrlError as exc:
            origin = (sources or {}).get("system_database_url", "settings")
            raise SettingsError(f"{origin}: {exc}") from None


def load_settings(config_file: str | Path | None, flags: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Merge flags > TOML file > environment > defaults into the supervisor's settings.

    ``flags`` maps settings keys (the TOML names, e.g. ``workers``, ``system_database_url``) to
    values; ``None`` means "not given". Returns a dict with the supervisor keys (``app``,
    ``workers``, ``name``, ``queues`` (a tuple or None), ``grace``, ``metrics_port``,
    ``boot_deadline``), ``worker_config`` (the DBOSConfig keys for every worker),
    ``config_file`` and ``sources`` (key → where its value came from). Raises
    :class:`SettingsError`.
    """
    allowed = _allowed_keys()
    env_values: dict[str, Any] = {}
    env_origin: dict[str, str] = {}
    for variable, key in ENVIRONMENT_VARIABLES:
        value = environ.get(variable)
        if value is not None and value.strip() and key not in env_values:
            env_values[key] = value.strip()
            env_origin[key] = f"environment variable {variable}"

    file_values: dict[str, Any] = read_config_file(config_file) if config_file else {}
    file_origin = f"config file {str(config_file)!r}"

    flag_values: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        if key in _SUPERVISOR_OWNED or key not in allowed:
            raise SettingsError(f"unknown setting {key!r} given as a flag")  # a bug in the caller
        flag_values[key] = value

    settings: dict[str, Any] = {key: default for key, default in SUPERVISOR_KEYS.items()}
    worker_config: dict[str, Any] = {}
    sources: dict[str, str] = {key: "default" for key in SUPERVISOR_KEYS}

    def origin_of(key: str, layer: str) -> str:
        if layer == "env":
            return env_origin[key]
        if layer == "file":
            return file_origin
        return _FLAG_NAMES.get(key) or "--" + key.replace("_", "-")

    # Lowest precedence first: each layer overrides the ones before it.
    for layer, values in (("env", env_values), ("file", file_values), ("flag", flag_values)):
        for key, value in values.items():
            origin = origin_of(key, layer)
            if key in SUPERVISOR_KEYS:
                settings[key] = _typed(key, value, origin, text=layer == "env")
            else:
                worker_config[key] = value
            sources[key] = origin

    if settings["name"] is None:
        settings["name"] = socket.gethostname()
        sources["name"] = "default (host name)"
    validate_worker_config(worker_config, sources)
    settings["worker_config"] = worker_config
    settings["config_file"] = str(config_file) if config_file else None
    settings["sources"] = sources
    return settings
