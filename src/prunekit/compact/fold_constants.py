"""Fold the constants of removed channels into what stays, so the outputs do not change.

A removed input channel j of a Convolution / InnerProduct is not always zero: after a zeroed
filter it holds a constant c_j (the filter's bias, or BatchNorm + Scale's ``β − γ·μ/σ``, passed
through ReLU, pooling, ...). Row n of the consumer received from it

* **no padding** (IP, or conv with pad 0): the same amount at every output position,
  ``d_n = c_j · Σ_k W[n, j, k]`` (the sum over the kernel, or over the H×W block of an IP's
  columns). It goes into the layer's bias, or, for a conv without bias followed only by a
  BatchNorm (ResNet), into that BatchNorm's mean: BN(y + d) with mean μ = BN(y) with mean μ − d
  (the stored mean blob is μ·factor, so it loses d·factor).
* **padding** (conv with pad > 0): at the borders part of the kernel reads zero padding instead
  of c_j, so the amount depends on the position: no bias can hold it. But every constant channel
  has the same border pattern (c inside, 0 in the padding), so the contributions of all removed
  constants of a group are ``Σ_j c_j · W[:, j]`` applied to that pattern: folded into a *carrier*,
  one kept constant channel c_0 of the same group, whose weights become
  ``W[:, 0] + Σ_j (c_j / c_0) · W[:, j]``. Exact everywhere, at the price of one channel
  (plan.py keeps it back). Layers without bias and without a BatchNorm sink use a carrier too.

Sums run in float64; the folded weights are stored as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunekit.compact.plan import Plan
from prunekit.compact.trace import Weighted


@dataclass
class Folded:
    """A weighted layer after folding, before slicing.

    ``matrix``: the weight as [N, C/g, positions] (conv: kernel positions; IP: C × H·W columns
    as [N, C, H·W]) with the carrier columns updated. ``delta[n]``: the constant the removed
    channels added to row n (to add to its bias or to take from its BatchNorm's mean).
    ``carriers``: group → local channel that carries that group's removed constants.
    """

    matrix: torch.Tensor
    delta: torch.Tensor
    carriers: dict[int, int] = field(default_factory=dict)
    folded: int = 0       # removed channels with a non-zero constant that were folded


def weight_matrix(w: Weighted) -> torch.Tensor:
    """The layer's weight viewed as [N, C/g, positions] (an IP's ``transpose`` undone)."""
    weight = w.layer.module.weight.detach()
    if w.layer.kind == "ip":
        if w.layer.module.transpose:
            weight = weight.t()
        return weight.reshape(w.num_rows, w.in_channels, -1)
    return weight.reshape(w.num_rows, w.in_channels // w.group, -1)


def fold_layer(plan: Plan, w: Weighted) -> Folded:
    """Fold the removed input constants of ``w`` (see the module docstring)."""
    version = plan.trace.versions[w.input]
    removed = ~plan.kept(w.input)
    constants = torch.where(removed & ~version.live, version.value, 0.0)
    g, n = w.group, w.num_rows
    ng, cg = n // g, w.in_channels // g
    matrix = weight_matrix(w)
    delta = torch.zeros(n, dtype=torch.float64)
    to_carrier = w.padded or not (w.has_bias or w.sink is not None)
    out = Folded(matrix, delta)
    for gi in range(g):
        c = constants[gi * cg:(gi + 1) * cg]
        idx = (c != 0).nonzero().flatten()
        if not len(idx):
            continue
        rows = slice(gi * ng, (gi + 1) * ng)
        if not to_carrier:
            delta[rows] += w.wsum[rows][:, idx] @ c[idx]
            out.folded += len(idx)
            continue
        carrier = plan.carrier(w, gi)
        if carrier is None:   # no kept filter reads these constants (plan.needs_carrier)
            continue
        out.folded += len(idx)
        c0 = float(version.value[gi * cg + carrier])
        if out.matrix is matrix:
            out.matrix = matrix.clone()
        add = torch.einsum("njk,j->nk", matrix[rows][:, idx].double(), c[idx] / c0)
        out.matrix[rows, carrier] = (matrix[rows, carrier].double() + add).to(matrix.dtype)
        out.carriers[gi] = carrier
    return out
