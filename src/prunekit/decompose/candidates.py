"""Which layers of a built net can be decomposed, and what each rank costs (MACs per image).

Costs use the net's real blob shapes (any input size, stride, dilation, group) and the same
counting rule as :mod:`prunekit.measure.flops` (weights × output positions), so the speedup that
rank selection aims at is the one ``prunekit flops`` reports on the decomposed model:

* conv, rank K per group: K·C·d_h·H_out·W_in (vertical conv, which keeps every input column)
  + N·K·d_w·H_out·W_out (horizontal conv); dense: N·(C/g)·d_h·d_w·H_out·W_out;
* InnerProduct, rank K: K·(in + out)·P, dense in·out·P, with P the positions before ``axis``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prunekit.decompose.fc import fc_singular_values
from prunekit.decompose.spatial import conv_singular_values, full_rank
from prunekit.net.graph import LayerEntry, Net


@dataclass
class Candidate:
    """One decomposable layer: its kind, exact-rank bound and cost model (MACs per image)."""

    name: str
    kind: str                  # "conv" or "fc"
    full_rank: int             # the split is exact at this rank (per group)
    dense_macs: int
    macs_per_rank: int         # MACs of the decomposed pair per unit of rank

    def macs(self, rank: int) -> int:
        return rank * self.macs_per_rank

    @property
    def useful_rank(self) -> int:
        """The largest rank whose pair is cheaper than the dense layer (0: none is)."""
        return min(self.full_rank, (self.dense_macs - 1) // self.macs_per_rank)


def why_not(entry: LayerEntry, module, shapes: dict) -> str | None:
    """None if the layer can be decomposed, else the reason (for error messages)."""
    if entry.type not in ("Convolution", "InnerProduct"):
        return f"is a {entry.type} layer; only Convolution and InnerProduct are decomposed"
    if len(entry.bottoms) != 1:
        return f"has {len(entry.bottoms)} bottoms; only single-bottom layers are decomposed"
    if entry.type == "Convolution" and len(shapes[entry.bottoms[0]]) != 4:
        return "is not a 2-D convolution"
    return None


def make_candidate(entry: LayerEntry, module, shapes: dict) -> Candidate:
    bottom, top = shapes[entry.bottoms[0]], shapes[entry.tops[0]]
    if entry.type == "InnerProduct":
        w = module.weight
        out_f, in_f = (w.shape[1], w.shape[0]) if module.transpose else tuple(w.shape)
        positions = math.prod(bottom[1:module.axis]) if module.axis > 1 else 1
        return Candidate(entry.name, "fc", min(out_f, in_f), out_f * in_f * positions,
                         (out_f + in_f) * positions)
    n, cg, dh, dw = module.weight.shape
    c = cg * module.group
    h_out, w_out, w_in = top[2], top[3], bottom[3]
    dense = module.weight.numel() * h_out * w_out
    per_rank = c * dh * h_out * w_in + n * dw * h_out * w_out
    return Candidate(entry.name, "conv", full_rank(module.weight, module.group), dense, per_rank)


def find_candidates(net: Net, include_fc: bool) -> list[Candidate]:
    """Every decomposable conv layer (and InnerProduct with ``include_fc``), in net order,
    that some rank makes cheaper."""
    out = []
    for entry, module in net.named_layers():
        if why_not(entry, module, net.blob_shapes) is not None:
            continue
        if entry.type == "InnerProduct" and not include_fc:
            continue
        cand = make_candidate(entry, module, net.blob_shapes)
        if cand.useful_rank >= 1:
            out.append(cand)
    return out


def singular_values(net: Net, name: str) -> torch.Tensor:
    """[g, r] descending singular values of the layer's weight matrices (float64)."""
    module = net.layer(name)
    if getattr(module, "group", None) is not None and module.weight.dim() == 4:
        return conv_singular_values(module.weight, module.group)
    return fc_singular_values(module.weight, module.transpose)
