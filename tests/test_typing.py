"""The public API carries a workflow's types: ``start_workflow`` and ``Queue.enqueue`` check the
arguments against the function's signature and their handles return its result type, as DBOS's
do. Checked by running mypy (a test dependency) on a small program that uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

PROGRAM = '''
from runtime import DBOS, Queue

@DBOS.workflow()
def total(a: int, b: str) -> float:
    return 1.0

reveal_type(DBOS.start_workflow(total, 1, "x").get_result())
reveal_type(Queue("q").enqueue(total, 1, "x").get_result())
DBOS.start_workflow(total, "not an int", "x")
'''


def test_handles_return_the_workflows_result_type_and_arguments_are_checked(tmp_path: Path) -> None:
    program = tmp_path / "typed_program.py"
    program.write_text(PROGRAM)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", str(REPO_ROOT / "pyproject.toml"), str(program)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    out = result.stdout
    assert out.count('Revealed type is "float"') + out.count('Revealed type is "builtins.float"') == 2, out
    assert 'Argument 2 to "start_workflow" of "DBOS" has incompatible type "str"; expected "int"' in out, out
    assert "Found 1 error" in out, out  # that one, and nothing else
