"""The progress line of a running ``pgfleet chaos``: a redrawn bar on a terminal, and on anything
else (a CI log, a file) a plain line at most every ``plain_every_sec`` of the run, so a log stays
readable instead of filling with carriage returns.

Fault log lines (``message``) go above the bar: the bar is wiped, the line printed, the bar drawn
again. Calls may come from the runner's loop and its fault injector at once; a lock keeps a
message and a redraw from interleaving on the stream.
"""

from __future__ import annotations

import shutil
import threading
from typing import TextIO

__all__ = ["Progress"]

_BAR_WIDTH = 24


class Progress:
    """The progress of one chaos run of ``total_sec`` seconds, written to ``stream``.

    ``update`` is cheap to call often: on a terminal it redraws in place, elsewhere it prints
    only when ``plain_every_sec`` of run time (``elapsed``) passed since the last plain line.
    """

    def __init__(self, total_sec: float, stream: TextIO, *, plain_every_sec: float = 10.0, columns: int | None = None) -> None:
        if total_sec <= 0:
            raise ValueError(f"a chaos run's length must be positive seconds, got {total_sec!r}")
        self.total_sec = float(total_sec)
        self.stream = stream
        self.plain_every_sec = plain_every_sec
        self.tty = _is_tty(stream)
        # One character short of the terminal: a line that fills it exactly wraps on some terminals.
        self.columns = (columns or shutil.get_terminal_size(fallback=(100, 24)).columns) - 1
        self._lock = threading.Lock()
        self._line = ""  # the last state, as text
        self._drawn = 0  # characters of the bar on screen (a TTY only)
        self._last_plain: float | None = None
        self._plain_pending = False  # a state not printed yet (non-TTY)
        self._closed = False

    def update(self, elapsed: float, faults: int, done: int, started: int, last_fault: str | None) -> None:
        """The run's state at ``elapsed`` seconds: faults so far, workflows done of started, the
        last fault (a short phrase, e.g. ``kill-node n2``)."""
        with self._lock:
            if self._closed:
                return
            self._line = self._format(elapsed, faults, done, started, last_fault)
            if self.tty:
                self._redraw()
            elif self._last_plain is None or elapsed - self._last_plain >= self.plain_every_sec:
                self._last_plain = elapsed
                self._plain_pending = False
                self._write(self._line + "\n")
            else:
                self._plain_pending = True

    def message(self, text: str) -> None:
        """A line above the bar (a fault's log line: time, kind, node, pids)."""
        with self._lock:
            if self.tty and self._drawn:
                self._write("\r" + " " * self._drawn + "\r" + text + "\n")
                self._drawn = 0
                if not self._closed:
                    self._redraw()
            else:
                self._write(text + "\n")

    def close(self) -> None:
        """End the bar: a TTY keeps its last drawing on its own line; a log gets the last state
        if it was not printed yet."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.tty and self._drawn:
                self._write("\n")
            elif not self.tty and self._plain_pending:
                self._write(self._line + "\n")
            self._drawn = 0

    def _format(self, elapsed: float, faults: int, done: int, started: int, last_fault: str | None) -> str:
        fraction = min(max(elapsed / self.total_sec, 0.0), 1.0)
        filled = round(fraction * _BAR_WIDTH)
        bar = "#" * filled + "." * (_BAR_WIDTH - filled)
        line = f"[{bar}] {elapsed:.0f}/{self.total_sec:.0f}s  faults {faults}  workflows {done}/{started} done"
        if last_fault:
            line += f"  last: {last_fault}"
        line = line.replace("\n", " ").replace("\r", " ")
        if self.tty and len(line) > self.columns:
            line = line[: max(self.columns - 1, 1)] + "…"
        return line

    def _redraw(self) -> None:
        # Pad over what the previous, longer drawing left on the line.
        pad = max(self._drawn - len(self._line), 0)
        self._write("\r" + self._line + " " * pad)
        self._drawn = len(self._line)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or stream-like object without isatty
        return False
