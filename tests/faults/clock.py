"""Run a process with its wall clock shifted: a host whose clock is N seconds off.

The process runs under libfaketime, preloaded with ``FAKETIME``
set to the offset: every read of the real-time clock through libc is shifted, so the process
believes the wrong time everywhere it uses wall-clock time — ``time.time()``, ``time.time_ns()``,
``datetime.now()``, and C libraries such as libpq — not only where Python code happens to call
``time.time``. That is why this tool uses libfaketime rather than a ``sitecustomize`` that patches
``time.time``: patching would leave ``datetime`` and C code on the true time, and a test would
pass against a host that is only half skewed.

The monotonic clock is left alone (``FAKETIME_DONT_FAKE_MONOTONIC``), as on a real host whose
wall clock is off: faking it too hangs timed waits. The ``clock_site`` directory is put first on
``PYTHONPATH`` for one workaround (see its ``sitecustomize``); it shifts nothing itself.

Usage::

    env = skewed_clock_env(+5.0)                   # or pytest.skip when libfaketime is missing
    proc = run_app("clock_worker.py", ..., env=env)

The child should report its ``time.time()`` so the test can check against the database clock
that the shift really took effect.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LIBFAKETIME_PATHS", "libfaketime", "skewed_clock_env"]

LIBFAKETIME_PATHS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)

_SITE_DIR = Path(__file__).resolve().parent / "clock_site"
_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def libfaketime() -> str | None:
    """The path of libfaketime: the build the ``libfaketime`` test dependency ships (so a fresh
    machine needs nothing installed by hand), else the system's (``apt-get install faketime``)."""
    try:
        from importlib import resources

        shipped = str(resources.files("libfaketime").joinpath("vendor/libfaketime/src/libfaketime.so.1"))
    except ImportError:
        shipped = ""
    return next((p for p in (shipped, *LIBFAKETIME_PATHS) if p and os.path.exists(p)), None)


def skewed_clock_env(offset_sec: float) -> dict[str, str]:
    """Environment variables that run a Python child with its wall clock ``offset_sec`` off
    (positive: ahead). Raises RuntimeError when libfaketime is not installed."""
    library = libfaketime()
    if library is None:
        raise RuntimeError("libfaketime is not installed (pip install libfaketime, or apt-get install faketime)")
    preload = " ".join(p for p in (library, os.environ.get("LD_PRELOAD", "")) if p)
    return {
        "LD_PRELOAD": preload,
        "FAKETIME": f"{offset_sec:+.3f}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "PYTHONPATH": os.pathsep.join([str(_SITE_DIR), str(_REPO_ROOT)]),
    }
