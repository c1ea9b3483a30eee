"""A progress bar for long commands (data conversion, sensitivity, timing) that stays out of logs.

On a terminal it redraws one line on stderr with the count, the rate in items/s (``images/s`` for
image commands) and an estimate of the time left; when stderr is a file or a pipe (a log, a test's
subprocess) it draws nothing, so logs keep only the Caffe-style lines the command prints itself.
Set ``PRUNEKIT_PROGRESS=1`` to force the bar on (or ``0`` to force it off).
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import TextIO

_REDRAW_S = 0.2  # redraw at most five times a second


def _enabled(stream: TextIO) -> bool:
    forced = os.environ.get("PRUNEKIT_PROGRESS")
    if forced in ("0", "1"):
        return forced == "1"
    return bool(getattr(stream, "isatty", lambda: False)())


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar:
    """``with ProgressBar(total, "decode", unit="images") as bar: bar.update(n)``.

    ``total`` may be 0 or None when unknown (then no percentage nor time left is shown).
    """

    def __init__(self, total: int | None, label: str, unit: str = "items",
                 stream: TextIO | None = None) -> None:
        self.total = total or 0
        self.label = label
        self.unit = unit
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._on = _enabled(self._stream)
        self._start = time.perf_counter()
        self._last_draw = 0.0

    def update(self, count: int = 1) -> None:
        """Count ``count`` more items done; redraws if the bar is on and enough time passed."""
        self.done += count
        now = time.perf_counter()
        if self._on and (now - self._last_draw >= _REDRAW_S or self.done == self.total):
            self._last_draw = now
            self._draw(now)

    def rate(self) -> float:
        """Items per second since the bar was made."""
        elapsed = time.perf_counter() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        """The text of the bar as it would be drawn now (also used by the tests)."""
        now = time.perf_counter() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            width = 24
            filled = min(width, int(width * self.done / self.total))
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            return (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                    f"{rate:,.1f} {self.unit}/s, {_clock(elapsed)} elapsed, {_clock(left)} left")
        return f"{self.label} {self.done} {self.unit}, {rate:,.1f} {self.unit}/s, {_clock(elapsed)} elapsed"

    def _draw(self, now: float) -> None:
        self._stream.write("\r" + self.line(now) + "\x1b[K")
        self._stream.flush()

    def clear(self) -> None:
        """Erase the bar so a log line can be printed on a clean line; the next update redraws."""
        if self._on:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._last_draw = 0.0

    def close(self) -> None:
        """Ends the bar's line (a terminal keeps the final count visible)."""
        if self._on:
            self._draw(time.perf_counter())
            self._stream.write("\n")
            self._stream.flush()
            self._on = False

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
