"""The share of training time spent waiting for data, for the training log's display lines.

Each display logs ``Iteration N, data wait 3.1% of 412 ms/iter``: milliseconds of wall time per
training iteration since the previous display (tests excluded), and the percentage of it that the
train net's data layers spent blocked in ``next_batch`` (decoding not hidden behind compute).
Above a few percent the data workers are the bottleneck (see docs/data.md).
"""

from __future__ import annotations

import time


class DataWaitMeter:
    """Accumulates iteration time and data-layer wait between two display lines."""

    def __init__(self, data_layers: list) -> None:
        self.layers = data_layers
        self.restart()

    def _waited(self) -> float:
        return sum(getattr(layer, "wait_s", 0.0) for layer in self.layers)

    def restart(self) -> None:
        self._start = time.perf_counter()
        self._wait0 = self._waited()
        self._excluded = 0.0
        self.iterations = 0

    def count_iteration(self) -> None:
        self.iterations += 1

    def exclude(self, seconds: float) -> None:
        """Time (a test pass) that is not part of training iterations."""
        self._excluded += seconds

    def line(self, iteration: int) -> str:
        """The log text for this display, then start a new window."""
        busy = max(time.perf_counter() - self._start - self._excluded, 1e-9)
        share = 100.0 * (self._waited() - self._wait0) / busy
        per_iter_ms = 1000.0 * busy / max(self.iterations, 1)
        self.restart()
        return f"Iteration {iteration}, data wait {share:.1f}% of {per_iter_ms:.0f} ms/iter"
