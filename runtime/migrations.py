"""``run_dbos_database_migrations``: migrate a system database from its URL, as DBOS 2.x's
function of that name does (``dbos migrate`` calls it), with pgfleet's migrations: DBOS's layout
plus pgfleet's cluster tables, the same that ``DBOS.launch()`` and ``pgfleet migrate`` apply."""

from __future__ import annotations

from sysdb import SystemDatabase, validate_url
from sysdb.errors import DatabaseUnavailableError, InvalidDatabaseUrlError, SchemaTooNewError

from .errors import DBOSDatabaseUnavailableError, DBOSException

__all__ = ["run_dbos_database_migrations"]


def run_dbos_database_migrations(
    system_database_url: str,
    *,
    app_database_url: str | None = None,
    schema: str = "dbos",
    application_role: str | None = None,
) -> None:
    """Create the system database if needed and bring its ``dbos`` schema up to date; with
    ``app_database_url``, create the application database's ``dbos.transaction_outputs``.

    An unreachable or malformed URL fails at once with ``DBOSDatabaseUnavailableError``
    (password masked). pgfleet's schema is always ``dbos``, and it grants nothing to an
    ``application_role`` (grant with your own migration tooling): both are refused clearly."""
    if schema != "dbos":
        raise DBOSException(f"pgfleet keeps its system tables in the 'dbos' schema; schema={schema!r} is not supported")
    if application_role is not None:
        raise DBOSException(
            "pgfleet does not grant privileges (application_role): grant the role USAGE on schema dbos "
            "and privileges on its tables, sequences and functions with your own migration tooling"
        )
    try:
        _open_once(validate_url(system_database_url), application_schema=False)
        if app_database_url is not None:
            _open_once(validate_url(app_database_url), application_schema=True)
    except (InvalidDatabaseUrlError, DatabaseUnavailableError, SchemaTooNewError) as exc:
        raise DBOSDatabaseUnavailableError(str(exc)) from exc


def _open_once(url: str, *, application_schema: bool) -> None:
    db = SystemDatabase(url, pool_size=1, application_name="pgfleet-migrate")
    db.open(run_migrations=not application_schema, application_schema=application_schema, wait_for_server=False)
    db.close()
