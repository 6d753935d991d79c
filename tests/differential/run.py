"""Run differential programs by hand and print both transcripts' differences.

    PGFLEET_DBOS_PYTHON=/path/to/venv/bin/python .venv/bin/python tests/differential/run.py basics.py [more.py ...]

Uses ``PGFLEET_TEST_DATABASE_URL``'s server when set, else an embedded server kept under
``/tmp/pgfleet-differential`` (started on first use, left running for the next run).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2])]

from psycopg.conninfo import make_conninfo  # noqa: E402

from differential.harness import run_both  # noqa: E402


def _server_url() -> str:
    url = os.environ.get("PGFLEET_TEST_DATABASE_URL")
    if url:
        return make_conninfo(url, dbname="postgres")
    from sysdb.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(Path("/tmp/pgfleet-differential"), durability=False)
    server.ensure_running()
    return server.url("postgres")


def main(programs: list[str], flags: set[str]) -> int:
    server = _server_url()
    failed = 0
    for program in programs:
        try:
            reference, ours = run_both(Path(program).name, server)
        except AssertionError as exc:
            print(f"== {program}: {str(exc)[-2500:]}")
            failed += 1
            continue
        same = reference.transcript == ours.transcript and reference.records == ours.records
        print(f"== {program}: {'same' if same else 'DIFFERENT'}")
        if "--show" in flags:
            print(f" dbos transcript: {json.dumps(reference.transcript)}")
        if not same:
            failed += 1
            for (label, left), right in zip(
                [("transcript", reference.transcript), ("records", reference.records)], [ours.transcript, ours.records]
            ):
                if left != right:
                    print(f"-- {label}\n dbos:    {json.dumps(left)}\n pgfleet: {json.dumps(right)}")
            if ours.crashed:
                print(ours.output[-2500:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main([a for a in sys.argv[1:] if not a.startswith("--")], {a for a in sys.argv[1:] if a.startswith("--")}))
