"""The functions this process can run, by the names recorded in the database.

Recovery, queue claiming and takeover find a workflow's function by the ``name`` column of its
status row, so each decorated function is registered under a unique name (by default its
``__qualname__``, as DBOS does). Methods of ``@DBOS.dbos_class`` classes are registered too;
instance methods find their instance again through ``DBOSConfiguredInstance.config_name``.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import DBOSConflictingRegistrationError

__all__ = [
    "RegisteredWorkflow",
    "RegisteredStep",
    "Registry",
    "registry",
    "DBOSConfiguredInstance",
]

# How a workflow function receives its bound object: a plain function, an instance method
# (self is not part of the recorded inputs), or a classmethod.
PLAIN, INSTANCE_METHOD, CLASS_METHOD = "plain", "instance", "class"


@dataclass
class RegisteredWorkflow:
    name: str
    func: Callable[..., Any]
    max_recovery_attempts: int | None
    validate_input: Callable[..., Any] | None
    kind: str = PLAIN
    class_name: str | None = None


@dataclass
class RegisteredStep:
    name: str
    func: Callable[..., Any]
    retries_allowed: bool
    interval_seconds: float
    max_attempts: int
    backoff_rate: float
    should_retry: Callable[[BaseException], bool] | None = None


@dataclass
class Registry:
    workflows: dict[str, RegisteredWorkflow] = field(default_factory=dict)
    steps: dict[str, RegisteredStep] = field(default_factory=dict)
    classes: dict[str, type] = field(default_factory=dict)
    instances: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_workflow(self, entry: RegisteredWorkflow) -> None:
        with self._lock:
            existing = self.workflows.get(entry.name)
            if existing is not None and _origin(existing.func) != _origin(entry.func):
                raise DBOSConflictingRegistrationError(
                    f"two different functions are registered as workflow {entry.name!r}: "
                    f"{_origin(existing.func)} and {_origin(entry.func)}; give one of them name=..."
                )
            self.workflows[entry.name] = entry

    def add_step(self, entry: RegisteredStep) -> None:
        with self._lock:
            self.steps[entry.name] = entry

    def workflow(self, name: str) -> RegisteredWorkflow | None:
        return self.workflows.get(name)

    def add_class(self, cls: type) -> None:
        with self._lock:
            self.classes[cls.__qualname__] = cls

    def add_instance(self, class_name: str, config_name: str, instance: Any) -> None:
        with self._lock:
            existing = self.instances.get((class_name, config_name))
            if existing is not None and existing is not instance:
                raise DBOSConflictingRegistrationError(
                    f"two instances of {class_name} share config_name {config_name!r}; "
                    "each configured instance needs its own name"
                )
            self.instances[(class_name, config_name)] = instance

    def instance(self, class_name: str, config_name: str) -> Any | None:
        return self.instances.get((class_name, config_name))

    def clear(self) -> None:
        with self._lock:
            self.workflows.clear()
            self.steps.clear()
            self.classes.clear()
            self.instances.clear()

    def code_version(self) -> str:
        """A hash of the registered workflows' source: DBOS's default application version."""
        digest = hashlib.md5(usedforsecurity=False)
        for name in sorted(self.workflows):
            func = self.workflows[name].func
            try:
                digest.update(inspect.getsource(func).encode())
            except (OSError, TypeError):
                digest.update(name.encode())
        return digest.hexdigest()


def _origin(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


registry = Registry()


class DBOSConfiguredInstance:
    """Base class for objects whose methods are workflows and steps.

    ``config_name`` names this instance: it is recorded with each workflow started on it, so
    recovery in another process calls the method on the instance of the same name there.
    """

    def __init__(self, config_name: str) -> None:
        if not isinstance(config_name, str) or not config_name:
            raise ValueError("DBOSConfiguredInstance needs a non-empty config_name")
        self.config_name = config_name
        registry.add_instance(type(self).__qualname__, config_name, self)
