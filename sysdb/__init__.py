"""pgfleet's system database: schema and migrations, every SQL statement, connections, and
the embedded Postgres used when no database URL is configured.

This package knows nothing of Python functions; ``runtime`` and ``cluster`` reach Postgres
only through it.
"""

from .database import Row, SystemDatabase, is_connection_failure, now_ms
from .errors import (
    DatabaseUnavailableError,
    DuplicateCheckpointError,
    InvalidDatabaseUrlError,
    OwnershipLostError,
    SchemaTooNewError,
    SystemDatabaseError,
)
from .migrate import LATEST_VERSION
from .urls import describe_url, resolve_system_database_url, validate_url

__all__ = [
    "SystemDatabase",
    "Row",
    "now_ms",
    "is_connection_failure",
    "LATEST_VERSION",
    "describe_url",
    "validate_url",
    "resolve_system_database_url",
    "SystemDatabaseError",
    "DatabaseUnavailableError",
    "DuplicateCheckpointError",
    "InvalidDatabaseUrlError",
    "OwnershipLostError",
    "SchemaTooNewError",
]
