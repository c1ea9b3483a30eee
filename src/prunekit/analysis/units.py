"""What one sensitivity item prunes: a layer's rows, columns or kernel positions, or a coupled
group of output channels.

Units, in the matrix view of :mod:`prunekit.prune.groups` (a conv weight ``[N, C/g·K]``):

* ``Row`` — filters of one Convolution (as L1_Row/FPGM_Row prune them: the filter is zeroed);
* ``Col`` — columns (input channel × kernel position) of one Convolution (as Reg_Col);
* ``Shape`` — kernel positions of one Convolution across all its input channels (as Reg_Shape /
  GL_Shape: a column of the kernel window);
* ``Channel`` — output channels: the filters of every producer that the channel model
  (prunekit/net/channels.py, asked through prunekit/prune/dependency.py's ChannelGraph) couples
  with this one (an Eltwise sums them: a residual stage prunes together) plus the columns of
  every consumer that reads the channel.

Only Convolutions are items (the planner's target is conv MACs); a Channel item is named by its
first producer and lists the others in ``members``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunekit.errors import PrunekitError
from prunekit.net.graph import Net
from prunekit.prune import groups
from prunekit.prune.dependency import ChannelGraph
from prunekit.prune.methods.filter_rank import prune_lowest_rows, rows_of
from prunekit.prune.methods.fpgm import distance_sums

UNITS = ("Row", "Col", "Channel", "Shape")
CRITERIA = ("l1", "fpgm")


@dataclass
class Item:
    """One curve of the sensitivity table: ``name`` and the conv layers it prunes together."""

    name: str
    members: list[str]
    num_groups: int                      # rows, columns, kernel positions or channels
    consumers: list[str] = field(default_factory=list)


def items(net: Net, unit: str) -> list[Item]:
    """The prunable items of ``net`` for ``unit`` in net order."""
    if unit not in UNITS:
        raise PrunekitError(f"--unit {unit}: expected one of {', '.join(UNITS)}")
    convs = [(e.name, m) for e, m in net.named_layers() if e.type == "Convolution"]
    if unit != "Channel":
        return [Item(name, [name], _count(m.weight, unit)) for name, m in convs]
    return _channel_items(net, [name for name, _ in convs])


def _count(w: torch.Tensor, unit: str) -> int:
    if unit == "Row":
        return groups.num_rows(w)
    if unit == "Col":
        return groups.num_cols(w)
    return groups.kernel_size(w)


def _channel_items(net: Net, convs: list[str]) -> list[Item]:
    """One item per class of coupled producers whose channels can be removed."""
    graph = ChannelGraph(net)
    out: list[Item] = []
    taken: set[str] = set()
    for name in convs:
        if name in taken or not bool(graph.removable_rows(name).all()):
            continue
        members = [name] + [p for p in graph.coupled_producers(name) if p != name]
        taken.update(members)
        consumers = sorted({c for m in members for c, _, _ in graph.consumers_of_output(m)})
        out.append(Item(name, members, graph.geometry(name).num_rows, consumers))
    return out


def scores(net: Net, item: Item, unit: str, criterion: str) -> torch.Tensor:
    """Importance of each group of ``item`` (lower = pruned first), float64.

    ``l1``: Σ|w| of the group (summed over coupled producers); ``fpgm``: the geometric-median
    distance sum of He et al. (rows and channels only)."""
    if criterion not in CRITERIA:
        raise PrunekitError(f"--criterion {criterion}: expected one of {', '.join(CRITERIA)}")
    weights = [net.layer(m).weight.detach() for m in item.members]
    if criterion == "fpgm":
        if unit not in ("Row", "Channel"):
            raise PrunekitError(f"--criterion fpgm ranks filters: use it with --unit Row or "
                                f"Channel, not {unit}")
        rows = torch.cat([rows_of(w) for w in weights], 1)
        return distance_sums(rows, torch.ones(rows.shape[0], dtype=torch.bool))
    w = weights[0]
    if unit in ("Row", "Channel"):
        return sum(groups.row_l1(x).double() for x in weights)
    col = groups.column_l1(w).double()
    if unit == "Col":
        return col
    return col.reshape(-1, groups.kernel_size(w)).sum(0)


def prune(net: Net, item: Item, unit: str, criterion: str, ratio: float,
          graph: ChannelGraph | None = None) -> None:
    """Zero the ⌊ratio·n⌋ lowest-scored groups of ``item`` in ``net``'s weights, in place."""
    s = scores(net, item, unit, criterion)
    pruned = ~prune_lowest_rows(s, torch.ones_like(s, dtype=torch.bool), ratio)
    w = net.layer(item.name).weight.data
    if unit == "Row":
        groups.zero_groups_(w, rows=pruned)
    elif unit == "Col":
        groups.zero_groups_(w, cols=pruned)
    elif unit == "Shape":
        groups.zero_groups_(w, cols=pruned.repeat(groups.num_cols(w) // groups.kernel_size(w)))
    else:
        _prune_channels(net, item, pruned, graph or ChannelGraph(net))


def _prune_channels(net: Net, item: Item, pruned: torch.Tensor, graph: ChannelGraph) -> None:
    state = {m: pruned for m in item.members}
    for m in item.members:
        groups.zero_groups_(net.layer(m).weight.data, rows=pruned)
    for consumer in graph.consumer_columns_of_pruned_rows(item.name, pruned, state):
        module = net.layer(consumer.layer)
        w = module.weight.data
        if getattr(module, "transpose", False):
            w = w.t()
        g = int(getattr(module, "group", 1))
        groups.zero_groups_(w, cols=consumer.mask(groups.num_cols(w), g))
