"""Differential tests: each program in ``tests/differential/programs`` is a DBOS 2.x program;
it runs under the real ``dbos`` (the Python named by ``PGFLEET_DBOS_PYTHON``) and under pgfleet
with only its import lines changed, and what each saw, raised and recorded must be the same.

Skipped, saying why, when ``PGFLEET_DBOS_PYTHON`` is not set (``dbos`` is never a dependency).
"""

from __future__ import annotations

import difflib
import json
import subprocess

import pytest

from differential.harness import DBOS_PYTHON, PROGRAMS, SKIP_REASON, for_pgfleet, run_both

# api_names.py is compared name by name (below), not transcript for transcript.
PROGRAM_FILES = sorted(p.name for p in PROGRAMS.glob("*.py") if p.name != "api_names.py")


def _diff(label: str, expected: object, actual: object) -> str:
    left = json.dumps(expected, indent=1, sort_keys=True).splitlines()
    right = json.dumps(actual, indent=1, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(left, right, f"dbos {label}", f"pgfleet {label}", lineterm=""))


# Programs that still differ, and why: each is an item of issue #10. strict=True, so that a
# program starting to pass fails the run until its entry here is removed.
KNOWN_DIFFERENCES: dict[str, str] = {}


def _program_param(name: str) -> object:
    known = KNOWN_DIFFERENCES.get(name)
    return pytest.param(name, marks=pytest.mark.xfail(reason=known, strict=True)) if known else name


# Programs that need a module of one of dbos's extras, which DBOS's Python may lack: skipped then,
# saying so (``pip install 'dbos[otel]==2.30.0'`` runs them).
NEEDS_MODULE = {"tracing.py": "opentelemetry.sdk"}


def _dbos_python_lacks(module: str) -> bool:
    assert DBOS_PYTHON
    return subprocess.run([DBOS_PYTHON, "-c", f"import {module}"], capture_output=True).returncode != 0


@pytest.mark.skipif(not DBOS_PYTHON, reason=SKIP_REASON)
@pytest.mark.parametrize("program", [_program_param(name) for name in PROGRAM_FILES])
def test_program_behaves_as_under_dbos(program: str, pg_server_url: str) -> None:
    needed = NEEDS_MODULE.get(program)
    if needed is not None and _dbos_python_lacks(needed):
        pytest.skip(f"{program} needs {needed} in PGFLEET_DBOS_PYTHON (pip install 'dbos[otel]==2.30.0' there)")
    reference, ours = run_both(program, pg_server_url)
    assert ours.transcript == reference.transcript, (
        _diff("transcript", reference.transcript, ours.transcript) + "\n\npgfleet run:\n" + ours.output
    )
    assert ours.records == reference.records, _diff("records", reference.records, ours.records)


def test_only_import_lines_change() -> None:
    """The pgfleet run of a program differs from the original in its dbos imports alone."""
    source = "from dbos import DBOS, Queue\nfrom dbos.error import DBOSException\nimport dbos\nimport json\nx = 'from dbos import y'\n"
    assert for_pgfleet(source) == (
        "from runtime import DBOS, Queue\nfrom runtime.error import DBOSException\nimport runtime as dbos\nimport json\n"
        "x = 'from dbos import y'\n"
    )


# DBOS 2.30 names pgfleet leaves out on purpose (the README's "Differences from DBOS" says why).
DELIBERATELY_ABSENT = {
    "module": {"KafkaMessage"},
    "DBOS": {"kafka_consumer"},
}


def _same_parameters(reference: object, ours: object) -> bool:
    """DBOS's parameters, in its order, kinds and defaults; pgfleet may add keyword-only ones
    that have defaults (a DBOS program never passes them)."""
    if not isinstance(reference, list) or not isinstance(ours, list):
        return reference == ours
    known = {p[0] for p in reference}
    extras = [p for p in ours if p[0] not in known]
    if any(kind != "KEYWORD_ONLY" or default == "<required>" for _name, kind, default in extras):
        return False
    return [p for p in ours if p[0] in known] == reference


def _api_problems(reference: dict[str, object], ours: dict[str, object]) -> list[str]:
    problems = []
    for section, names in reference.items():
        if not isinstance(names, dict):
            continue
        have = ours.get(section) if isinstance(ours.get(section), dict) else {}
        assert isinstance(have, dict)
        for name, params in names.items():
            if name in DELIBERATELY_ABSENT.get(section, set()):
                continue
            if name not in have:
                problems.append(f"{section}.{name}: missing")
            elif not _same_parameters(params, have[name]):
                problems.append(f"{section}.{name}: parameters {have[name]} where DBOS has {params}")
    missing_errors = sorted(set(reference.get("error module") or []) - set(ours.get("error module") or []))
    problems += [f"error.{name}: missing" for name in missing_errors]
    return problems


def _is_async_name(problem: str) -> bool:
    """The names issue #11 (async) brings: the ``_async`` twins, ``asyncio_wait``, the async
    datasource and the async handle's methods."""
    name = problem.split(":", 1)[0]
    section, _, member = name.partition(".")
    return (
        member.endswith("_async") or member == "asyncio_wait" or section == "WorkflowHandleAsync"
        or member in ("AsyncSQLAlchemyDatasource", "WorkflowHandleAsync")
    )


def api_problems(pg_server_url: str) -> list[str]:
    """Every difference between DBOS 2.30's public API and pgfleet's (see api_names.py)."""
    reference, ours = run_both("api_names.py", pg_server_url)
    as_dict = lambda run: {label: value for label, _kind, value in run.transcript}  # noqa: E731
    return _api_problems(as_dict(reference), as_dict(ours))


@pytest.mark.skipif(not DBOS_PYTHON, reason=SKIP_REASON)
def test_public_api_has_every_dbos_name_with_its_parameters(pg_server_url: str) -> None:
    problems = [p for p in api_problems(pg_server_url) if not _is_async_name(p)]
    assert not problems, f"{len(problems)} differences from DBOS's public API:\n" + "\n".join(problems)


@pytest.mark.skipif(not DBOS_PYTHON, reason=SKIP_REASON)
def test_public_async_api_has_every_dbos_name_with_its_parameters(pg_server_url: str) -> None:
    problems = [p for p in api_problems(pg_server_url) if _is_async_name(p)]
    assert not problems, f"{len(problems)} differences from DBOS's async API:\n" + "\n".join(problems)
