"""Per-layer energies E(r): the share of a layer kept at rank r, for rank selection.

* ``weights`` (data-free, accnn): E(r) = Σ_{a≤r} s_a / Σ_a s_a over the singular values s of the
  layer's matrices (summed over groups, rank r per group). accnn uses the plain, unsquared values.
* ``data`` (Zhang et al. 2015, "Accelerating very deep convolutional networks"): E(r) = Σ_{a≤r} λ_a
  / Σ_a λ_a over the eigenvalues λ of the second moment of the layer's *responses* on real
  batches. For the spatial split the responses are r = Mᵀz, with z a column patch of the input
  (C/g·d_h values at one output row and one input column) and M the matrix of
  :mod:`prunekit.decompose.spatial`; so λ = eig(Mᵀ Σ_z M) with Σ_z = E[z zᵀ]. For an InnerProduct
  z is the flattened input and M = Wᵀ. Directions the data never excites get no energy, unlike
  the weights' singular values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.decompose.candidates import Candidate, singular_values
from prunekit.decompose.fc import fc_matrix
from prunekit.decompose.spatial import conv_matrices
from prunekit.net.graph import Net


def cumulative(values: torch.Tensor, max_rank: int) -> list[float]:
    """E(1..max_rank) from per-group descending values [g, r]: normalised prefix sums."""
    values = values.clamp(min=0)
    total = float(values.sum())
    prefix = values.sum(0).cumsum(0)[:max_rank]
    if total <= 0:
        return [(r + 1) / values.shape[1] for r in range(max_rank)]
    return [float(p) / total for p in prefix]


def weight_energies(net: Net, cands: list[Candidate]) -> dict[str, list[float]]:
    """Data-free energies (accnn) of every candidate, E(1..useful_rank)."""
    return {c.name: cumulative(singular_values(net, c.name), c.useful_rank) for c in cands}


def data_energies(net: Net, cands: list[Candidate], batches: int) -> dict[str, list[float]]:
    """Energies from the responses on ``batches`` forward passes of ``net`` (its data layers)."""
    moments: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    handles = [net.layer(c.name).register_forward_hook(_collector(c, moments, counts))
               for c in cands]
    try:
        with torch.no_grad():
            for _ in range(batches):
                net()
    finally:
        for h in handles:
            h.remove()
    out = {}
    for c in cands:
        sigma = moments[c.name] / counts[c.name]                     # [g, rows, rows]
        m = _matrices(net.layer(c.name), c.kind)                     # [g, rows, cols]
        lam = torch.linalg.eigvalsh(m.transpose(1, 2) @ sigma @ m).flip(-1)
        out[c.name] = cumulative(lam, c.useful_rank)
    return out


def _matrices(module, kind: str) -> torch.Tensor:
    if kind == "fc":
        return fc_matrix(module.weight, module.transpose).t()[None]  # [1, in, out]
    return conv_matrices(module.weight, module.group)


def _collector(c: Candidate, moments: dict, counts: dict):
    def hook(module, inputs, output) -> None:
        z = _patches(module, inputs[0], c.kind)                      # [g, rows, samples]
        add = (z @ z.transpose(1, 2)).double()
        moments[c.name] = moments[c.name] + add if c.name in moments else add
        counts[c.name] = counts.get(c.name, 0) + z.shape[2]
    return hook


def _patches(module, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The response inputs z as columns, per group."""
    if kind == "fc":
        return x.detach().flatten(module.axis).reshape(-1, module.num_input).t()[None].float()
    g = module.geometry
    z = F.unfold(x.detach().float(), kernel_size=(g.kernel[0], 1), dilation=(g.dilation[0], 1),
                 padding=(g.pad[0], 0), stride=(g.stride[0], 1))     # [B, C·d_h, L]
    rows = z.shape[1] // module.group
    z = z.reshape(z.shape[0], module.group, rows, -1).permute(1, 2, 0, 3)
    return z.reshape(module.group, rows, -1)
