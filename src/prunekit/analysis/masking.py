"""Apply a plan to a net's weights: each item's lowest-ranked groups zeroed to its ratio (the
same ranking as ``prunekit sensitivity``), e.g. to compact and time the planned model."""

from __future__ import annotations

import math

import torch

from prunekit.analysis import units
from prunekit.analysis.planner import Plan
from prunekit.net.channel_rules import FILTERS
from prunekit.net.graph import Net
from prunekit.prune.dependency import ChannelGraph


def apply_plan(net: Net, plan: Plan, unit: str, criterion: str) -> None:
    """Zero, in place, what ``plan`` prunes of ``net`` (built with weights loaded)."""
    by_name = {item.name: item for item in units.items(net, unit)}
    graph = ChannelGraph(net) if unit == "Channel" else None
    for planned in plan.items:
        if planned.ratio > 0:
            units.prune(net, by_name[planned.name], unit, criterion, planned.ratio, graph)


@torch.no_grad()
def he_normal(net: Net, seed: int = 0) -> None:
    """He-normal weights (std √(2 / fan_in)) and zero biases of the layers with filters
    (channel rule FILTERS: Convolution, InnerProduct), for timing a model whose file has no
    weights (the ranking then is arbitrary but the shapes are real)."""
    generator = torch.Generator().manual_seed(seed)
    for _, module in net.named_layers():
        if getattr(module, "channel_rule", None) != FILTERS:
            continue
        w = module.weight
        fan_in = math.prod(w.shape[1:])
        w.copy_(torch.randn(w.shape, generator=generator) * math.sqrt(2.0 / fan_in))
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor):
            bias.zero_()
