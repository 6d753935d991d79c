"""``main``, the entry point of the ``pgfleet`` console script: parse, run the handler, and turn
every expected failure into one line on stderr and an exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

import psycopg

from sysdb import InvalidDatabaseUrlError, SystemDatabaseError
from sysdb.embedded import EmbeddedPostgresError

from ..settings import SettingsError
from .errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from .output import _first_line
from .parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pgfleet`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)

    def fail(message: str, code: int) -> int:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": message, "exit_code": code}))
        print(f"pgfleet: {message}", file=sys.stderr)
        return code

    try:
        return int(args.handler(args))
    except CliError as exc:
        return fail(str(exc), exc.exit_code)
    except SettingsError as exc:
        return fail(f"bad config: {exc}", EXIT_USAGE)
    except InvalidDatabaseUrlError as exc:
        return fail(str(exc), EXIT_USAGE)
    except (SystemDatabaseError, EmbeddedPostgresError) as exc:
        return fail(str(exc), EXIT_FAILED)
    except psycopg.Error as exc:
        return fail(f"database error: {_first_line(exc)}", EXIT_FAILED)
    except KeyboardInterrupt:
        return 130
