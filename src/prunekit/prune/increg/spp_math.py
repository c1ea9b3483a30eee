"""Numerical core of SPP, structured probabilistic pruning (Wang et al., "Structured Probabilistic
Pruning for Convolutional Neural Network Acceleration", BMVC 2018), with the 2018-03 semantics of
Caffe_APP ``PP_Col`` / ``PP-linear_Col`` (docs/pruning.md "SPP").

One layer's groups (columns or rows); per-group state is 1-D float NumPy arrays of length G plus a
bool ``pruned`` array, on the host like IncReg's (see increg/math.py for why). Each group has a keep
probability p (1 at start); every update the least important groups lose probability, the most
important regain it; p = 0 prunes a group for good. Sorts are stable (ties go to the lower group
index); the original sort was unstable. Only the sampled mask is drawn with torch (the
generator's stream is part of the solverstate), on the weights' device.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike

from prunekit.prune.increg.math import (
    columns_to_prune,
    float_ranks,
    scheme1_increment,
    stable_ascending_rank,
)


def spp_groups_to_prune(num_groups: int, prune_ratio: float, delta: float,
                        num_pruned: float) -> int:
    """n_p = ceil((prune_ratio + delta) · G) − num_pruned, with columns_to_prune's float snapping.

    ``delta`` widens the set of groups that lose probability beyond the target, so the target
    count reaches p = 0 sooner.
    """
    return columns_to_prune(num_groups, float(prune_ratio) + float(delta), num_pruned)


def linear_increment(j: ArrayLike, n_p: int, AA: float) -> np.ndarray:
    """``PP-linear`` Δ(j) = AA − (AA/n_p)·j, in probability per update (AA at j = 0, 0 at n_p)."""
    if n_p <= 0:
        raise ValueError(f"linear_increment: n_p must be positive (got {n_p})")
    return AA - (AA / n_p) * float_ranks(j)


def update_score(score: ArrayLike, l1: ArrayLike, pruned: ArrayLike,
                 decay: float) -> np.ndarray:
    """Discounted importance S ← decay·S + ‖w_g‖₁ for unpruned groups (pruned ones keep S);
    S in weight units, in ``score``'s dtype."""
    score = np.asarray(score)
    return np.where(pruned, score, decay * score + np.asarray(l1).astype(score.dtype, copy=False))


@dataclass
class SPPStepResult:
    """Outcome of spp_step, as host arrays. New arrays; inputs untouched. ``skipped``: n_p ≤ 0,
    nothing changed (the inputs themselves are returned)."""

    score: np.ndarray
    prob: np.ndarray
    pruned: np.ndarray
    newly_pruned: np.ndarray
    skipped: bool = False


def spp_step(score: ArrayLike, l1: ArrayLike, prob: ArrayLike, pruned: ArrayLike, n_p: int,
             AA: float, decay: float = 0.9, kk: float = 0.25,
             variant: str = "exp") -> SPPStepResult:
    """One SPP update for one layer.

    S ← decay·S + L1 (update_score); j = stable ascending rank of S among unpruned groups;
    Δ(j) = scheme-1 curve (variant "exp", shape kk) or AA − AA/n_p·j (variant "linear");
    p ← clip(p − Δ(j), 0, 1); unpruned groups whose p reached 0 become permanently pruned (p = 0).
    No cap on how many reach 0 in one update (as the original); the caller stops updating a layer
    once it reaches its target and switches to deterministic_mask. Probabilities are unitless;
    AA is the largest probability drop per update.
    """
    score, prob, pruned = np.asarray(score), np.asarray(prob), np.asarray(pruned)
    if n_p <= 0:
        return SPPStepResult(score, prob, pruned, np.zeros_like(pruned), skipped=True)
    if variant not in ("exp", "linear"):
        raise ValueError(f"spp_step: variant must be 'exp' or 'linear' (got {variant!r})")
    new_score = update_score(score, l1, pruned, decay)
    j = stable_ascending_rank(new_score, pruned, first=-int(np.count_nonzero(pruned)))
    j = np.maximum(j, 0).astype(prob.dtype)
    delta = scheme1_increment(j, n_p, AA, kk) if variant == "exp" else linear_increment(j, n_p, AA)
    new_prob = np.where(pruned, 0.0, np.clip(prob - delta, 0.0, 1.0)).astype(prob.dtype, copy=False)
    newly = ~pruned & (new_prob <= 0)
    return SPPStepResult(new_score, new_prob, pruned | newly, newly)


def sample_group_mask(prob: torch.Tensor, pruned: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Group-wise Bernoulli mask: keep group g iff u_g < p_g with u_g ~ U(0, 1); pruned stay off.

    Draws exactly G numbers every call, whatever is pruned, so the RNG stream (and an exact
    resume from a saved ``generator.get_state()``) does not depend on the pruning state. Torch
    tensors (the caller converts the host p), and the generator must live on ``prob``'s device.
    """
    u = torch.rand(prob.shape, generator=generator, dtype=prob.dtype, device=prob.device)
    return (u < prob) & ~pruned


def deterministic_mask(prob: ArrayLike, pruned: ArrayLike) -> np.ndarray:
    """Mask once the layer reached its target: keep groups with p > 0 that are not pruned
    (host bool array)."""
    return (np.asarray(prob) > 0) & ~np.asarray(pruned)

