"""Pruning progress: theoretical speedup and compression from per-layer pruned ratios.

Caffe_IncReg's ``GetPruneProgress`` (docs/pruning.md "Progress: MACs and speedup"), evaluated after every iteration. It
is a *theoretical* account in **MACs** (multiply-accumulates): per registered layer

* base cost ``F_L`` = weight element count × output H×W for a Convolution (the spatial size of
  its top blob in the TRAIN net; all spatial axes for N-d convolutions), or the weight count for
  an InnerProduct. No factor 2, no bias, no batch, no BN/pooling/eltwise cost;
* parameter count ``P_L`` = weight element count (bias excluded);
* ``speedup = ΣF / ΣF·(1−pr)(1−pc)`` over Convolution layers, or all layers with
  IF_speedup_count_fc. Row pruning of layer L−1 and column pruning of layer L both count, each
  in its own layer;
* ``compRatio = ΣP / ΣP·(1−pruned_ratio)`` over InnerProduct layers, or all layers with
  IF_compr_count_conv.

An empty sum gives 0/0: the result is ``float('nan')`` (the fork printed nan too; a net without
FC layers has compRatio nan by default). A non-empty sum whose layers are all fully pruned gives
``inf``.

Departure: a Convolution with several tops (Caffe applies the same weights to each bottom)
costs count × Σ_tops H×W here; the fork multiplied the count by H×W once per top.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from prunekit.prune.units import Unit, unit_named

#: Layer types registered for pruning (same as prunekit.prune.config.PRUNABLE_TYPES).
CONV = "Convolution"
FC = "InnerProduct"


@dataclass(frozen=True)
class LayerCost:
    """Static size of one registered layer.

    ``num_row``/``num_col`` describe Caffe's weight-matrix view: a conv weight
    [N, C/g, k...] is N rows × (C/g·∏k) columns (a column exists once per group); an
    InnerProduct is num_output rows × inputs columns (whatever ``transpose`` says).
    ``macs`` is F_L (MACs per sample), ``num_param`` is P_L (weights only).
    """

    index: int
    name: str
    type: str
    weight_shape: tuple[int, ...]
    num_row: int
    num_col: int
    group: int
    num_param: int
    macs: int

    @property
    def is_conv(self) -> bool:
        return self.type == CONV


def layer_costs(net) -> list[LayerCost]:
    """F_L and P_L of every Convolution/InnerProduct of a built :class:`~prunekit.net.graph.Net`,
    in prototxt order (the registration index L). Use the TRAIN net, as the fork did; only
    shapes are read, so a net built on the ``meta`` device works."""
    costs: list[LayerCost] = []
    for entry, module in net.named_layers():
        if entry.type not in (CONV, FC):
            continue
        shape = tuple(int(d) for d in module.weight.shape)
        count = math.prod(shape)
        if entry.type == CONV:
            spatial = sum(math.prod(net.blob_shapes[top][2:]) for top in entry.tops)
            num_row, num_col = shape[0], math.prod(shape[1:])
            group = int(getattr(module, "group", 1))
            macs = count * spatial
        else:
            transposed = bool(getattr(module, "transpose", False))
            num_row, num_col = (shape[1], shape[0]) if transposed else (shape[0], shape[1])
            group = 1
            macs = count
        costs.append(LayerCost(len(costs), entry.name, entry.type, shape, num_row, num_col,
                               group, count, macs))
    return costs


@dataclass(frozen=True)
class PrunedRatios:
    """Fractions of a layer's columns (``col`` = pc) and rows (``row`` = pr) that are pruned.

    Counts may be fractional (a column pruned in some groups only counts 1/group per group).
    """

    col: float = 0.0
    row: float = 0.0

    @property
    def combined(self) -> float:
        """Fraction of weights removed: pc + pr − pc·pr."""
        return self.col + self.row - self.col * self.row

    @classmethod
    def from_counts(cls, cost: LayerCost, num_pruned_col: float,
                    num_pruned_row: float) -> PrunedRatios:
        return cls(num_pruned_col / cost.num_col, num_pruned_row / cost.num_row)


def pruned_ratio_for_comparison(unit: Unit | str, ratios: PrunedRatios) -> float:
    """The ratio compared with a layer's targets: pc for the Col unit, pr for Row."""
    try:
        return unit_named(unit).pick(ratios.col, ratios.row)
    except ValueError:
        raise ValueError(f"unknown pruning unit {unit!r} (expected 'Col' or 'Row')") from None


@dataclass(frozen=True)
class Progress:
    """Net-level progress. MAC totals are over the layers counted for the speedup, parameter
    totals over those counted for compRatio (see the module docstring)."""

    speedup: float
    comp_ratio: float
    macs_origin: float
    macs_left: float
    num_param_origin: float
    num_param_left: float


def _ratio(num: float, den: float) -> float:
    """num/den with IEEE results for den = 0: nan for 0/0, inf otherwise (as C++ prints)."""
    if den == 0:
        return math.nan if num == 0 else math.inf
    return num / den


def prune_progress(costs: Sequence[LayerCost], ratios: Sequence[PrunedRatios], *,
                   speedup_count_fc: bool = False,
                   compr_count_conv: bool = False) -> Progress:
    """GetPruneProgress: speedup and compression ratio for the current pruned ratios.

    ``ratios[i]`` belongs to ``costs[i]``. Speedup counts conv layers (plus FC with
    ``speedup_count_fc``); compRatio counts FC layers (plus conv with ``compr_count_conv``).
    Empty sums give nan.
    """
    if len(costs) != len(ratios):
        raise ValueError(f"prune_progress: {len(costs)} layers but {len(ratios)} ratios")
    macs0 = macs1 = par0 = par1 = 0.0
    for cost, r in zip(costs, ratios):
        if cost.is_conv or speedup_count_fc:
            macs0 += cost.macs
            macs1 += cost.macs * (1.0 - r.row) * (1.0 - r.col)
        if not cost.is_conv or compr_count_conv:
            par0 += cost.num_param
            par1 += cost.num_param * (1.0 - r.combined)
    return Progress(_ratio(macs0, macs1), _ratio(par0, par1), macs0, macs1, par0, par1)
