"""Side-by-side timing of two nets (e.g. a pruned model and its dense original) for
``prunekit speedup``: theoretical speedup from MAC counts, measured speedup from interleaved runs.

Why interleaved: on a shared machine load drifts, so the two nets take turns (A B, B A, ...) and
the table uses the median over rounds of each; a ratio of medians taken side by side in one
process is what the benchmarks rules ask for. Times are milliseconds per batch; "forward" runs
under ``torch.no_grad`` (inference), "forward+backward" is a plain training step without the
solver update. Per-layer times come from Caffe's instrumented loop (``time_net``) and are matched
by layer name; a layer present in only one net shows as missing in the other.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from prunekit.measure.flops import count_net
from prunekit.measure.timing import _Clock, time_net, time_plain_steps
from prunekit.net.graph import Net


@dataclass
class SideTimes:
    """Per-round times of one net: whole-net forward / step, and per-layer forward+backward."""

    forward_ms: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    layer_ms: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class LayerComparison:
    name: str
    type: str
    macs: int            # of the model being measured (--model), per image
    vs_macs: int         # of the reference (--vs-model), per image
    ms: float | None     # median forward+backward of the layer, ms per batch
    vs_ms: float | None

    @property
    def theoretical(self) -> float | None:
        return self.vs_macs / self.macs if self.macs else None

    @property
    def measured(self) -> float | None:
        return self.vs_ms / self.ms if self.ms and self.vs_ms is not None else None


@dataclass(frozen=True)
class Comparison:
    layers: list[LayerComparison]
    macs: int
    vs_macs: int
    forward_ms: float
    vs_forward_ms: float
    step_ms: float
    vs_step_ms: float
    rounds: int
    iterations: int

    @property
    def theoretical(self) -> float:
        return self.vs_macs / self.macs if self.macs else float("inf")

    @property
    def measured_forward(self) -> float:
        return self.vs_forward_ms / self.forward_ms

    @property
    def measured_step(self) -> float:
        return self.vs_step_ms / self.step_ms


def time_forward(net: Net, iterations: int) -> float:
    """Mean ms of ``net()`` under no_grad (inference), synchronised on a GPU."""
    clock = _Clock(net.device)
    with torch.no_grad():
        clock.sync()
        start = time.perf_counter()
        for _ in range(iterations):
            net()
        clock.sync()
    return (time.perf_counter() - start) * 1000.0 / max(iterations, 1)


def _round(net: Net, side: SideTimes, iterations: int, per_layer: bool) -> None:
    side.forward_ms.append(time_forward(net, iterations))
    if not per_layer:
        side.step_ms.append(time_plain_steps(net, iterations))
        return
    result = time_net(net, iterations, plain_loop=True)
    side.step_ms.append(result.plain_forward_backward_ms)
    for name, fwd, bwd in result.layers:
        side.layer_ms.setdefault(name, []).append(fwd + bwd)


def compare(net: Net, vs_net: Net, rounds: int = 5, iterations: int = 10,
            warmup: int = 2, per_layer: bool = True) -> Comparison:
    """Time ``net`` against ``vs_net`` in alternating rounds; speedup = vs time / net time.

    ``per_layer=False`` skips Caffe's instrumented loop (per-layer times stay empty), which
    halves the cost for big nets on a CPU.
    """
    for n in (net, vs_net):
        time_net(n, max(warmup, 1), plain_loop=False)
    a, b = SideTimes(), SideTimes()
    for r in range(rounds):
        order = ((net, a), (vs_net, b)) if r % 2 == 0 else ((vs_net, b), (net, a))
        for n, side in order:
            _round(n, side, iterations, per_layer)
    return _summarise(net, vs_net, a, b, rounds, iterations)


def _summarise(net: Net, vs_net: Net, a: SideTimes, b: SideTimes, rounds: int,
               iterations: int) -> Comparison:
    counts = {r.name: r for r in count_net(net, dense=True)}
    vs_counts = {r.name: r for r in count_net(vs_net, dense=True)}
    med = statistics.median
    layers = []
    for name, row in vs_counts.items():
        if not row.macs:
            continue
        mine = counts.get(name)
        layers.append(LayerComparison(
            name, row.type, mine.macs if mine else 0, row.macs,
            med(a.layer_ms[name]) if name in a.layer_ms else None,
            med(b.layer_ms[name]) if name in b.layer_ms else None))
    total = sum(r.macs for r in counts.values() if r.kind == "conv")
    vs_total = sum(r.macs for r in vs_counts.values() if r.kind == "conv")
    return Comparison(layers, total, vs_total, med(a.forward_ms), med(b.forward_ms),
                      med(a.step_ms), med(b.step_ms), rounds, iterations)
