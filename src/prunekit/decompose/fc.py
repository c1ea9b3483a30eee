"""Truncated SVD of an InnerProduct: W [out, in] ≈ u_K diag(s_K) v_Kᵀ → two InnerProducts.

The first (``<name>_red``, in → K) has weight diag(s_K)·v_Kᵀ and no bias; the second
(``<name>_rec``, K → out) has weight u_K and the original bias, as in accnn's acc_fc. Cost per
position goes from in·out to K·(in + out) MACs.
"""

from __future__ import annotations

import torch

from prunekit.decompose.spatial import singular_values_of


def fc_matrix(weight: torch.Tensor, transpose: bool) -> torch.Tensor:
    """The weight as [out, in] (Caffe stores [in, out] when ``transpose: true``), float64."""
    w = weight.detach().double()
    return w.t() if transpose else w


def fc_singular_values(weight: torch.Tensor, transpose: bool) -> torch.Tensor:
    """Singular values, descending, as a [1, min(out, in)] tensor (one "group")."""
    return singular_values_of(fc_matrix(weight, transpose)[None])


def split_fc(weight: torch.Tensor, transpose: bool, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(red [K, in], rec [out, K]) float32, with rec @ red the rank-K approximation."""
    w = fc_matrix(weight, transpose)
    if not 1 <= rank <= min(w.shape):
        raise ValueError(f"rank {rank} outside 1..{min(w.shape)}")
    u, s, vh = torch.linalg.svd(w, full_matrices=False)
    red = s[:rank, None] * vh[:rank]
    rec = u[:, :rank]
    return red.float().contiguous(), rec.float().contiguous()
