"""An app's own workload: ``pgfleet chaos APP --workload MODULE:FUNCTION``.

``MODULE`` is a dotted module importable from the current directory, or a path to a ``.py``
file; ``FUNCTION`` a function of it (``name`` or ``Class.attribute``). The run calls it once per
wave with the keyword arguments it declares among ``client`` (a ``DBOSClient`` on the run's
system database), ``wave`` (from 0), ``waves`` and ``seed``; it enqueues or starts work through
the app's API and returns what it started: an iterable of workflow ids, handles
(``get_workflow_id()``) or statuses (``.workflow_id``). A coroutine function is awaited.

Everything that can be checked before a run starts is checked when the workload is loaded (the
spec, the import, the function, its parameters), so a mistake costs no fleet start; what the
function returns is checked at each wave, the first one included.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from cluster.process.chaos.model import ExpectedOutcome
from runtime import DBOSClient

__all__ = ["ARGUMENTS", "WorkloadError", "AppWorkload"]

# The keyword arguments a workload function may declare, and nothing else without a default.
ARGUMENTS = ("client", "wave", "waves", "seed")


class WorkloadError(Exception):
    """A workload that cannot run: a bad ``--workload`` spec, a module that does not import, a
    function we cannot call, a return value that names no workflows, an enqueue that kept
    failing. The message says which, and how to fix it."""


def _split(spec: str) -> tuple[str, list[str]]:
    module, colon, function = spec.rpartition(":")
    attributes = function.split(".")
    if not colon or not module.strip() or not all(a.isidentifier() for a in attributes):
        raise WorkloadError(
            f"--workload {spec!r}: expected MODULE:FUNCTION (a dotted module importable from the current "
            "directory or a path to a .py file, a colon, then the function's name), e.g. myapp.chaos:workload"
        )
    return module.strip(), attributes


def _is_path(module: str) -> bool:
    return module.endswith(".py") or os.sep in module or "/" in module


def _import_file(spec: str, module: str) -> ModuleType:
    path = Path(module).expanduser().resolve()
    if not path.is_file():
        raise WorkloadError(f"--workload {spec!r}: no such file {module!r} (from {os.getcwd()})")
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and getattr(loaded, "__file__", None) and Path(str(loaded.__file__)).resolve() == path:
        return loaded  # already imported under its name (the app and the workload in one file)
    if loaded is not None:  # a module of that name exists (json.py, say): do not shadow it
        name = f"pgfleet_chaos_workload_{name}"
    found = importlib.util.spec_from_file_location(name, path)
    if found is None or found.loader is None:
        raise WorkloadError(f"--workload {spec!r}: {module!r} cannot be imported as a Python module")
    sys.path.insert(0, str(path.parent))  # its sibling modules import as they do under `pgfleet supervise`
    loaded = importlib.util.module_from_spec(found)
    sys.modules[name] = loaded
    try:
        found.loader.exec_module(loaded)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise WorkloadError(f"--workload {spec!r}: importing {module!r} failed: {type(exc).__name__}: {exc}") from exc
    return loaded


def _import_dotted(spec: str, module: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise WorkloadError(
                f"--workload {spec!r}: no module named {exc.name!r} importable from {os.getcwd()} "
                "(give a path to a .py file, or run from the directory that holds the module)"
            ) from exc
        raise WorkloadError(f"--workload {spec!r}: importing {module!r} failed: {type(exc).__name__}: {exc}") from exc
    except (Exception, SystemExit) as exc:
        raise WorkloadError(f"--workload {spec!r}: importing {module!r} failed: {type(exc).__name__}: {exc}") from exc


def _find_function(spec: str, module_name: str, module: ModuleType, attributes: list[str]) -> Callable[..., Any]:
    value: Any = module
    for depth, attribute in enumerate(attributes):
        if not hasattr(value, attribute):
            where = module_name if depth == 0 else ".".join(attributes[:depth])
            raise WorkloadError(f"--workload {spec!r}: {where!r} has no attribute {attribute!r}")
        value = getattr(value, attribute)
    if not callable(value):
        raise WorkloadError(f"--workload {spec!r}: {'.'.join(attributes)!r} is {value!r:.60} ({type(value).__name__}), not a function")
    return value  # type: ignore[no-any-return]  # callable() checked it


def _declared_arguments(spec: str, function: Callable[..., Any]) -> tuple[str, ...]:
    """The names of ARGUMENTS to pass by keyword; refuses a parameter we cannot give."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError) as exc:
        raise WorkloadError(f"--workload {spec!r}: cannot read the function's parameters: {exc}") from exc
    names: list[str] = []
    for p in parameters:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            return ARGUMENTS  # **kwargs: it declares them all
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if p.name in ARGUMENTS and p.kind is not inspect.Parameter.POSITIONAL_ONLY:
            names.append(p.name)
        elif p.default is inspect.Parameter.empty:
            why = "is positional-only" if p.name in ARGUMENTS else "is not one we give"
            raise WorkloadError(
                f"--workload {spec!r}: the function's parameter {p.name!r} {why}: a workload function takes "
                f"(by keyword) only {', '.join(ARGUMENTS)}, and any other parameter needs a default"
            )
    return tuple(names)


def _id_of(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if hasattr(item, "workflow_id"):  # a WorkflowStatus (and DBOS's handles' attribute)
        return item.workflow_id
    get = getattr(item, "get_workflow_id", None)
    return get() if callable(get) else None


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def _workflow_ids(spec: str, wave: int, result: Any) -> list[str]:
    """The ids in what the function returned (in order, each once); refuses anything else."""

    def refuse(what: str) -> WorkloadError:
        return WorkloadError(
            f"--workload {spec!r}, wave {wave}: the function returned {what}; it must return the workflows it "
            "started: an iterable of workflow ids, handles or statuses"
        )

    if result is None:
        raise refuse("None")
    if isinstance(result, (str, bytes, Mapping)):
        raise refuse(f"{result!r:.60} ({type(result).__name__}), not an iterable of ids")
    try:
        items = list(result)
    except TypeError:
        raise refuse(f"{result!r:.60} ({type(result).__name__}, not iterable)") from None
    ids: dict[str, None] = {}
    for index, item in enumerate(items):
        workflow_id = _id_of(item)
        if not isinstance(workflow_id, str) or not workflow_id:
            raise WorkloadError(
                f"--workload {spec!r}, wave {wave}: item {index} of what it returned is {item!r:.80}, which is not a workflow id "
                "(a non-empty str) nor a handle or status with one"
            )
        ids[workflow_id] = None
    return list(ids)


class AppWorkload:
    """An app's workload function (see the module's docstring), loaded and checked at once."""

    def __init__(self, spec: str, *, seed: int = 0, waves: int = 1) -> None:
        if not isinstance(spec, str):
            raise WorkloadError(f"--workload must be a string MODULE:FUNCTION, got {spec!r}")
        module_name, attributes = _split(spec)
        module = _import_file(spec, module_name) if _is_path(module_name) else _import_dotted(spec, module_name)
        self.spec, self.seed, self.waves = spec, seed, waves
        self.function = _find_function(spec, module_name, module, attributes)
        self.arguments = _declared_arguments(spec, self.function)

    @property
    def name(self) -> str:
        """The ``--workload`` spec, as given."""
        return self.spec

    def call(self, client: DBOSClient, wave: int) -> Any:
        """Call the function for ``wave`` with the arguments it declares (awaiting a coroutine)."""
        given = {"client": client, "wave": wave, "waves": self.waves, "seed": self.seed}
        result = self.function(**{name: given[name] for name in self.arguments})
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return result

    def wave(self, client: DBOSClient, wave: int) -> list[ExpectedOutcome]:
        """Run the function for ``wave``; each workflow it names must end, and not from an
        infrastructure cause (``exact=False``: an app's outputs are its own business)."""
        return [ExpectedOutcome(workflow_id) for workflow_id in _workflow_ids(self.spec, wave, self.call(client, wave))]
