"""Tai et al. (2016) spatial decomposition of a convolution: (C, d_h, d_w) → (K, d_h, 1) + (N, 1, d_w).

A conv weight W [N, C/g, d_h, d_w] of group g is, per group, the matrix
M[(c, j), (n, i)] = W[n, c, j, i] with C/g·d_h rows and N/g·d_w columns. Its rank-K truncated SVD
M ≈ U_K diag(s_K) Q_Kᵀ (the best rank-K approximation in Frobenius norm, Eckart–Young) splits
the layer in two convolutions with √s on each side:

* vertical ``V`` [g·K, C/g, d_h, 1]: V[k, c, j] = U[(c, j), k]·√s_k, no bias;
* horizontal ``H`` [N, K, 1, d_w]: H[n, k, i] = Q[(n, i), k]·√s_k, the original bias.

Composed they compute the conv with weight Ŵ[n, c, j, i] = Σ_k H[n, k, i]·V[k, c, j] exactly,
borders included, when the vertical conv takes the row stride/pad/dilation and the horizontal
one the column stride/pad/dilation (the vertical output keeps every input column, and its zero
bias keeps the horizontal conv's zero padding equal to the original's). K is per group.
"""

from __future__ import annotations

import torch


def conv_matrices(weight: torch.Tensor, group: int) -> torch.Tensor:
    """The per-group matrices M [g, C/g·d_h, N/g·d_w] of a weight [N, C/g, d_h, d_w] (float64)."""
    n, c, dh, dw = weight.shape
    w = weight.detach().double().reshape(group, n // group, c, dh, dw)
    return w.permute(0, 2, 3, 1, 4).reshape(group, c * dh, (n // group) * dw)


def full_rank(weight: torch.Tensor, group: int) -> int:
    """min(C/g·d_h, N/g·d_w): the rank at which the split is exact for any weight."""
    n, c, dh, dw = weight.shape
    return min(c * dh, (n // group) * dw)


def singular_values_of(m: torch.Tensor) -> torch.Tensor:
    """Descending singular values of a batch of matrices [g, r, c] → [g, min(r, c)].

    From the eigenvalues of the smaller Gram matrix (float64): several times faster than an SVD
    on a CPU, and accurate enough for energies and error estimates (not used to split).
    """
    gram = m @ m.transpose(1, 2) if m.shape[1] <= m.shape[2] else m.transpose(1, 2) @ m
    return torch.linalg.eigvalsh(gram).flip(-1).clamp(min=0).sqrt()


def conv_singular_values(weight: torch.Tensor, group: int) -> torch.Tensor:
    """Singular values of every group's M, descending: [g, full_rank] (float64)."""
    return singular_values_of(conv_matrices(weight, group))


def split_conv(weight: torch.Tensor, group: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(V [g·K, C/g, d_h, 1], H [N, K, 1, d_w]) for rank K per group (float32)."""
    n, c, dh, dw = weight.shape
    if not 1 <= rank <= full_rank(weight, group):
        raise ValueError(f"rank {rank} outside 1..{full_rank(weight, group)}")
    u, s, qh = torch.linalg.svd(conv_matrices(weight, group), full_matrices=False)
    root = s[:, :rank].sqrt()                                        # [g, K]
    v = u[:, :, :rank] * root[:, None, :]                            # [g, C/g·d_h, K]
    h = qh[:, :rank, :] * root[:, :, None]                           # [g, K, N/g·d_w]
    v = v.permute(0, 2, 1).reshape(group * rank, c, dh, 1)
    h = h.reshape(group, rank, n // group, dw).permute(0, 2, 1, 3)    # [g, N/g, K, d_w]
    h = h.reshape(n, rank, 1, dw)
    return v.float().contiguous(), h.float().contiguous()


def composed_weight(v: torch.Tensor, h: torch.Tensor, group: int) -> torch.Tensor:
    """Ŵ [N, C/g, d_h, d_w] that the pair (V, H) computes (for reconstruction errors)."""
    gk, c, dh, _ = v.shape
    n, k, _, dw = h.shape
    vg = v.double().reshape(group, k, c, dh)
    hg = h.double().reshape(group, n // group, k, dw)
    w = torch.einsum("gnki,gkcj->gncji", hg, vg)
    return w.reshape(n, c, dh, dw).float()
