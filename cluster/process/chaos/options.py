"""What one ``pgfleet chaos`` run was asked to do, and the command that asks for it again."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .model import FAULT_KINDS

__all__ = ["ChaosOptions", "ChaosUsageError", "ChaosSetupError", "parse_fault_kinds", "BUILTIN_APP"]

# `pgfleet chaos` with no APP runs the built-in app and workload.
BUILTIN_APP = "builtin"


class ChaosUsageError(ValueError):
    """A chaos run asked for something it cannot do; the message says what and why."""


class ChaosSetupError(RuntimeError):
    """The run could not get going (a node that does not start, workers that never register);
    the message carries what the nodes logged."""


@dataclass
class ChaosOptions:
    """The options of one run (the CLI's flags, already validated for form)."""

    app: str = BUILTIN_APP
    nodes: int = 3
    workers: int = 2
    seconds: float = 120.0
    seed: int = 0
    workload: str | None = None
    faults: list[str] = field(default_factory=lambda: list(FAULT_KINDS))
    faults_given: bool = False  # False: the default set, from which kinds this run cannot do are dropped
    netns: bool = False
    config: Path | None = None
    database_url: str | None = None
    database_url_flag: bool = False  # given as --database-url (else from --config or the environment)
    member_timeout_sec: float = 5.0  # the nodes' (from --config), for how long a pause is held
    drain_seconds: float = 180.0
    keep: bool = False
    workdir: Path | None = None
    json: bool = False
    report: Path | None = None

    def validate(self) -> None:
        """Raise :class:`ChaosUsageError` for options that cannot make a run."""
        if self.nodes < 2:
            raise ChaosUsageError(f"--nodes must be at least 2 (a takeover needs a survivor), got {self.nodes}")
        if self.workers < 1:
            raise ChaosUsageError(f"--workers must be at least 1, got {self.workers}")
        if not self.seconds > 0:
            raise ChaosUsageError(f"--seconds must be more than 0, got {self.seconds:g}")
        if self.app != BUILTIN_APP and self.workload is None:
            raise ChaosUsageError(
                f"APP {self.app!r} needs --workload MODULE:FUNCTION: a function of yours that starts work through "
                "your app's API and returns the workflow ids (leave APP out to run the built-in app and workload)"
            )
        if self.app == BUILTIN_APP and self.workload is not None:
            raise ChaosUsageError("--workload needs the APP it drives (pgfleet chaos APP --workload MODULE:FUNCTION)")
        if self.config is not None and not self.config.is_file():
            raise ChaosUsageError(f"--config {self.config}: no such file")

    def repro_command(self) -> str:
        """The exact command that replays this run (same seed, same plan)."""
        words = ["pgfleet", "chaos"] + ([] if self.app == BUILTIN_APP else [self.app])
        words += ["--nodes", str(self.nodes), "--workers", str(self.workers), "--seconds", f"{self.seconds:g}",
                  "--seed", str(self.seed), "--faults", ",".join(self.faults)]  # fmt: skip
        if self.workload:
            words += ["--workload", self.workload]
        if self.netns:
            words.append("--netns")
        if self.config is not None:
            words += ["--config", str(self.config)]
        if self.database_url and self.database_url_flag:
            words += ["--database-url", "'<the same server>'"]  # never print a password
        return " ".join(shlex.quote(w) if not w.startswith("'<") else w for w in words)


def parse_fault_kinds(text: str) -> list[str]:
    """``kill-node,partition`` → the kinds, each known, none twice (also "all")."""
    if text.strip() == "all":
        return list(FAULT_KINDS)
    if text.strip() == "none":  # a baseline: the same fleet and work, nothing broken
        return []
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ChaosUsageError(f"unknown fault kind(s) {', '.join(unknown)}: choose from {', '.join(FAULT_KINDS)} (or all)")
    if not kinds:
        raise ChaosUsageError("--faults names no fault kind")
    return list(dict.fromkeys(kinds))
