"""Time two modules that compute the same thing on one input, side by side: which is faster here?

``prunekit compact --column-conv auto`` asks this of each column-pruned conv (its dense
Convolution vs its ColumnConvolution). As in :mod:`prunekit.measure.compare`, the two take turns
(A B, B A, ...) so that load drifting on a shared machine hits both, and each side's time is the
median over rounds. Inference only (``torch.no_grad``): compact's output is what gets deployed.
Times are milliseconds per call, i.e. per batch of the input's batch size; on a GPU every sample
ends with a synchronise.
"""

from __future__ import annotations

import math
import statistics
import time

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _sample(module, x: torch.Tensor, iterations: int) -> float:
    """Mean ms of ``iterations`` calls."""
    _sync(x.device)
    start = time.perf_counter()
    for _ in range(iterations):
        module(x)
    _sync(x.device)
    return (time.perf_counter() - start) * 1000.0 / iterations


@torch.no_grad()
def time_pair(a, b, x: torch.Tensor, rounds: int = 7,
              sample_ms: float = 10.0) -> tuple[float, float]:
    """Median ms per call of ``a(x)`` and ``b(x)`` over ``rounds`` interleaved rounds; each
    round's sample repeats the call enough times to last about ``sample_ms`` (timer resolution
    and Python overhead stay small next to it)."""
    for module in (a, b, a, b):  # warm-up: first calls allocate, pick kernels, pack weights
        module(x)
    once = max(_sample(a, x, 1), _sample(b, x, 1), 1e-3)
    iterations = max(1, math.ceil(sample_ms / once))
    times: dict[int, list[float]] = {0: [], 1: []}
    pair = (a, b)
    for r in range(rounds):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for side in order:
            times[side].append(_sample(pair[side], x, iterations))
    return statistics.median(times[0]), statistics.median(times[1])
