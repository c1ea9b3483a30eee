"""``prunekit plan --by latency``: a plan whose *measured* speedup after compaction hits the target.

1. Each layer's forward time on this machine at the given batch size
   (:mod:`prunekit.analysis.layer_latency`) is its cost; the knapsack plans against the linear
   model "an item pruned by r keeps (1 − r) of its time" (:mod:`prunekit.analysis.planner`).
2. The model is wrong in known ways (a layer also gets cheaper when the layer before loses
   filters; small convs do not scale linearly), so the plan is checked: its ratios are applied
   to the weights (:mod:`prunekit.analysis.masking`), the net is compacted
   (:mod:`prunekit.compact`) and timed against the dense net in interleaved rounds
   (:func:`interleaved_forward_ms`, forward under no_grad, ms per batch).
3. While the measured speedup misses the target by more than ``tolerance``, the model's target
   is corrected (:func:`_next_target`: interpolated between the targets measured below and
   above, else scaled by requested / measured, at most ×/÷1.5) and the plan is made again (at
   most ``rounds`` times); the closest plan is returned with every measurement.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from prunekit.analysis.layer_latency import forward_ms
from prunekit.analysis.masking import apply_plan
from prunekit.analysis.planner import Plan, plan
from prunekit.compact import compact
from prunekit.errors import PrunekitError
from prunekit.measure.compare import time_forward
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_net_param_blobs, net_blobs


#: Largest correction of the model's target per round (one noisy timing must not send it far).
MAX_STEP = 1.5


@dataclass
class LatencyPlan:
    plan: Plan
    measured: float                     # dense forward ms / compacted forward ms
    history: list[tuple[float, float]] = field(default_factory=list)  # (model target, measured)
    dense_ms: float = 0.0
    compacted_ms: float = 0.0


def latency_costs(net: Net, sensitivity: dict, iterations: int) -> tuple[dict[str, float], float]:
    """(forward ms per curve, ms of everything else) at ``net``'s batch size."""
    ms = forward_ms(net, iterations)
    costs = {c["name"]: sum(ms.get(m, 0.0) for m in c["members"]) for c in sensitivity["curves"]}
    return costs, sum(ms.values()) - sum(costs.values())


def plan_by_latency(net_param, dense: Net, sensitivity: dict, speedup: float, rounds: int = 6,
                    tolerance: float = 0.03, timing_rounds: int = 3, timing_iterations: int = 3,
                    channels_last: bool = False,
                    on_round: Callable[[float, float], None] | None = None) -> LatencyPlan:
    """Plan, compact, measure, correct (see the module docstring). ``dense``: the net at the
    batch size to time, weights loaded, placed on its device."""
    costs, fixed = latency_costs(dense, sensitivity, timing_iterations)
    batch = next(iter(dense.blob_shapes.values()))[0]
    blobs = net_blobs(dense)
    target, best, history = speedup, None, []
    for k in range(rounds):
        try:
            p = plan(sensitivity, costs, fixed, target)
        except PrunekitError:
            if k == 0:
                raise
            break     # the corrected target is out of reach: keep the closest plan so far
        compacted = _compacted(net_param, blobs, p, sensitivity, batch, dense.device)
        if channels_last:
            compacted.use_channels_last()
        small_ms, dense_ms = interleaved_forward_ms(compacted, dense, timing_rounds,
                                                    timing_iterations)
        compacted.close()
        measured = dense_ms / small_ms
        if best is None or abs(measured - speedup) < abs(best.measured - speedup):
            best = LatencyPlan(p, measured, dense_ms=dense_ms, compacted_ms=small_ms)
        history.append((target, measured))
        if on_round is not None:
            on_round(target, measured)
        if abs(measured / speedup - 1) <= tolerance:
            break
        target = _next_target(history, speedup)
    best.history = history
    return best


def _next_target(history: list[tuple[float, float]], speedup: float) -> float:
    """Log-linear interpolation between the closest model targets measured below and above the
    requested speedup (measured speed grows with the model's target); before both exist, the
    last target scaled by requested / measured, at most ×/÷ MAX_STEP."""
    below = [h for h in history if h[1] < speedup]
    above = [h for h in history if h[1] >= speedup]
    if below and above:
        (tb, mb), (ta, ma) = max(below), min(above)
        if ma > mb and ta != tb:
            w = (math.log(speedup) - math.log(mb)) / (math.log(ma) - math.log(mb))
            return math.exp(math.log(tb) + w * (math.log(ta) - math.log(tb)))
    target, measured = history[-1]
    factor = min(max(speedup / measured, 1 / MAX_STEP), MAX_STEP)
    return max(1.0, target * factor)


def interleaved_forward_ms(net: Net, vs_net: Net, rounds: int, iterations: int
                           ) -> tuple[float, float]:
    """Median forward ms per batch of ``net`` and ``vs_net``, timed in alternating rounds after
    one warm-up pass each (forward only: the deployed cost; ``prunekit speedup`` also times
    training steps, which would triple the cost of every planning round)."""
    a, b = [], []
    for n in (net, vs_net):
        time_forward(n, 1)
    for r in range(rounds):
        pairs = ((net, a), (vs_net, b)) if r % 2 == 0 else ((vs_net, b), (net, a))
        for n, out in pairs:
            out.append(time_forward(n, iterations))
    return statistics.median(a), statistics.median(b)


def _compacted(net_param, blobs: dict, p: Plan, sensitivity: dict, batch: int, device) -> Net:
    """The planned, compacted net at ``batch`` with its weights, on ``device``."""
    masked = Net(with_batch_size(net_param, 1), TEST, source="<planned>")
    load_net_param_blobs(masked, blobs, "<planned>")
    apply_plan(masked, p, sensitivity["unit"], sensitivity["criterion"])
    compaction = compact(net_param, masked)
    arrays = {name: [t.float().numpy() for t in ts]
              for name, ts in compaction.weights.blobs.items()}
    net = Net(with_batch_size(compaction.net_param, batch), TEST, source="<compacted plan>")
    load_net_param_blobs(net, arrays, "<compacted plan>")
    masked.close()
    return net.place(device)
