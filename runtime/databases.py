"""Opening a process's databases: the system database (the embedded Postgres when no URL is
configured), migrated, and the application database of ``@DBOS.transaction`` functions when it
is a different one."""

from __future__ import annotations

import os

from sysdb import SystemDatabase, resolve_system_database_url, validate_url
from sysdb.errors import DatabaseUnavailableError, InvalidDatabaseUrlError, SchemaTooNewError
from sysdb.session_names import executor_session_name

from .config import ResolvedConfig, connection_bounds
from .errors import DBOSDatabaseUnavailableError

__all__ = ["open_databases"]


def open_databases(config: ResolvedConfig) -> tuple[SystemDatabase, SystemDatabase | None]:
    """Connect (starting the embedded Postgres if no URL is configured) and migrate. Returns
    the system database and the application database (None when it is the system one). All or
    nothing: on failure whatever was opened is closed, and :class:`DBOSDatabaseUnavailableError`
    says why."""
    sysdb: SystemDatabase | None = None
    try:
        url = resolve_system_database_url(config.system_database_url, config.embedded_data_dir)
        sysdb = _database(url, None, config)
        sysdb.open()
        app_db = None
        app_url = validate_url(config.application_database_url) if config.application_database_url else None
        if app_url and app_url != url:
            app_db = _database(app_url, "app", config)
            app_db.open(run_migrations=False, application_schema=True)
    except (InvalidDatabaseUrlError, DatabaseUnavailableError, SchemaTooNewError) as exc:
        if sysdb is not None:
            sysdb.close()
        raise DBOSDatabaseUnavailableError(str(exc)) from exc
    return sysdb, app_db


def _database(url: str, purpose: str | None, config: ResolvedConfig) -> SystemDatabase:
    """A database of this process, its sessions named ``pgfleet <pid> <executor id>[ <purpose>]``
    in pg_stat_activity (the pid first, so that Postgres's 63-byte limit never cuts it): a chaos
    run's triggers read who wrote each row from it (see :mod:`sysdb.session_names`)."""
    return SystemDatabase(
        url,
        pool_size=config.sys_db_pool_size,
        application_name=executor_session_name(os.getpid(), config.executor_id, purpose),
        retry_timeout_sec=config.database_retry_timeout_sec,
        prepare_statements=config.prepare_statements,
        **connection_bounds(config),
    )
