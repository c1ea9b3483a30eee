"""Sensitivity analysis: prune one item at a time (no retraining) to each ratio and score the net.

For every item of :mod:`prunekit.analysis.units` and every ratio the item's lowest-ranked groups
are zeroed, the TEST phase is scored on fixed batches with
:func:`prunekit.solver.evaluate.evaluate` (what ``prunekit test`` prints), and the weights are
put back. A net with no loss nor accuracy output (a deploy prototxt) is scored by its **output
distortion** ‖y − y_dense‖ / ‖y_dense‖ instead (its ``loss`` column; accuracy stays empty).

Each item also carries its dense conv MACs per image (:mod:`prunekit.measure.flops`) and, when
asked, its measured share of the forward time (:mod:`prunekit.analysis.layer_latency`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from prunekit.analysis import units
from prunekit.analysis.fixed_batches import FixedBatches
from prunekit.measure.flops import count_net
from prunekit.net.graph import Net
from prunekit.prune.dependency import ChannelGraph
from prunekit.solver.evaluate import evaluate


@dataclass
class Curve:
    """One item's scores: ``accuracy[i]`` and ``loss[i]`` at ``ratios[i]`` (ratio 0 = dense)."""

    name: str
    members: list[str]
    num_groups: int
    macs: int                    # conv MACs per image of the members (dense)
    time_share: float | None     # fraction of the net's forward time in the members
    ratios: list[float] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)


@dataclass
class Sensitivity:
    unit: str
    criterion: str
    score: str                   # "accuracy" or "distortion"
    dense_accuracy: float | None
    dense_loss: float
    total_conv_macs: int
    curves: list[Curve]

    def add_time_shares(self, shares: dict[str, float]) -> None:
        """Each curve's share of the forward time (the sum over its members)."""
        for curve in self.curves:
            curve.time_share = sum(shares.get(m, 0.0) for m in curve.members)

    def as_dict(self) -> dict:
        return asdict(self)


def run_sensitivity(net: Net, unit: str, criterion: str, ratios: list[float], iterations: int,
                    on_point: Callable[[], None] | None = None) -> Sensitivity:
    """The sensitivity table of ``net`` (weights loaded, TEST phase, placed on its device).

    The scored batches are the next ``iterations`` batches of the data layers: the first ones
    of the TEST set on a fresh net, as ``prunekit test`` scores them."""
    found = units.items(net, unit)
    graph = ChannelGraph(net) if unit == "Channel" else None
    data = FixedBatches(net, iterations)
    macs = {r.name: r.macs for r in count_net(net, dense=True) if r.kind == "conv"}
    reference = _dense_outputs(data) if not _scored(net) else None
    dense_acc, dense_loss = _score(data, reference)
    curves = []
    for item in found:
        saved = _save(net, item)
        curve = Curve(item.name, item.members, item.num_groups,
                      sum(macs.get(m, 0) for m in item.members), None)
        curve.ratios.append(0.0)
        curve.accuracy.append(dense_acc)
        curve.loss.append(dense_loss)
        for ratio in ratios:
            units.prune(net, item, unit, criterion, ratio, graph)
            acc, loss = _score(data, reference)
            _restore(net, saved)
            curve.ratios.append(float(ratio))
            curve.accuracy.append(acc)
            curve.loss.append(loss)
            if on_point is not None:
                on_point()
        curves.append(curve)
    return Sensitivity(unit, criterion, "distortion" if reference is not None else "accuracy",
                       dense_acc, dense_loss, sum(macs.values()), curves)


def _scored(net: Net) -> bool:
    """True when the net has a loss or an ``accuracy`` output to score with."""
    return any(w for e in net.entries for w in e.loss_weights) or \
        any("accuracy" in name for name in net.output_names)


def _dense_outputs(data: FixedBatches) -> list[dict[str, torch.Tensor]]:
    data.rewind()
    with torch.no_grad():
        return [{k: v.clone() for k, v in data()[1].items()} for _ in data.batches]


def _score(data: FixedBatches, reference) -> tuple[float | None, float]:
    """(accuracy or None, mean loss or output distortion) on the fixed batches."""
    data.rewind()
    if reference is not None:
        with torch.no_grad():
            errors = []
            for dense in reference:
                out = data()[1]
                num = sum(float((out[k] - v).norm() ** 2) for k, v in dense.items())
                den = sum(float(v.norm() ** 2) for v in dense.values())
                errors.append((num / max(den, 1e-30)) ** 0.5)
        return None, sum(errors) / len(errors)
    scores, loss = evaluate(data, len(data.batches))
    acc = [value for name, value, _ in scores if "accuracy" in name]
    return (acc[0] if acc else None), loss


def _save(net: Net, item: units.Item) -> dict[str, torch.Tensor]:
    names = set(item.members) | set(item.consumers)
    return {n: net.layer(n).weight.detach().clone() for n in names}


def _restore(net: Net, saved: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, w in saved.items():
            net.layer(name).weight.copy_(w)
