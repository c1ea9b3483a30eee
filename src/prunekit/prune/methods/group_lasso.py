"""``GL_Row``, ``GL_Col``, ``GL_Channel``: SSL group lasso, then pruning of the weakest groups.

Wen, Wu, Wang, Chen, Li, "Learning Structured Sparsity in Deep Neural Networks" (NIPS 2016):
add λ·Σ_g ‖w_g‖₂ to the loss, whose gradient is λ·w_g/‖w_g‖₂ for each group g, so whole groups
are driven to zero together. Groups of a weight W [N, C, k…] (InnerProduct: [N, C]):

* Row: a filter W[n] (an output neuron of an InnerProduct);
* Col: a column of Caffe's weight matrix, W[:, c, i, j] (SSL's shape-wise group);
* Channel: an input channel W[:, c] (for an InnerProduct the same as Col).

λ is the solver field ``sparsity_lambda`` (per iteration, in weight units, added to the gradient
like weight decay). In each pruning round the groups with the smallest ‖w_g‖₂ are pruned until
``prune_ratio·k/R`` of them are gone (hard masks), as SSL's fine-tuning freezes its zero groups.
"""

from __future__ import annotations

import torch

from prunekit.prune.units import CHANNEL, COL, ROW
from prunekit.prune.units import Unit, unit_named
from prunekit.prune.methods.mask_method import MaskedLayer, MaskMethod, count_to_prune

_EPS = 1e-12


def group_dims(unit: Unit | str, w: torch.Tensor) -> tuple[int, ...]:
    """The weight dimensions one group spans (reduced to compute the group norms)."""
    return unit_named(unit).norm_dims(w)


def group_norms(w: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """‖w_g‖₂ per group, shaped to broadcast against ``w``."""
    return w.double().pow(2).sum(dim=dims, keepdim=True).sqrt()


def add_group_lasso_grad_(grad: torch.Tensor, w: torch.Tensor, dims: tuple[int, ...],
                          lam: float) -> None:
    """grad += λ·w_g/‖w_g‖₂ for every group (all-zero groups get nothing)."""
    norms = group_norms(w, dims)
    scale = torch.where(norms > _EPS, lam / norms.clamp(min=_EPS), torch.zeros_like(norms))
    grad.add_((scale * w.double()).to(grad.dtype))


def prune_weakest_groups(w: torch.Tensor, kept: torch.Tensor, dims: tuple[int, ...],
                         ratio: float) -> torch.Tensor:
    """Weight-shaped keep mask: groups already pruned stay pruned, then the smallest-norm kept
    groups go until ⌊G·ratio⌋ of the G groups are pruned (ties by position)."""
    norms = group_norms(w, dims)
    group_kept = kept.to(torch.float64).amax(dim=dims, keepdim=True) > 0
    flat_norm, flat_kept = norms.reshape(-1), group_kept.reshape(-1).clone()
    n_new = count_to_prune(flat_norm.numel(), ratio) - int((~flat_kept).sum())
    if n_new > 0:
        ranked = torch.where(flat_kept, flat_norm, torch.full_like(flat_norm, float("inf")))
        flat_kept[torch.argsort(ranked, stable=True)[:n_new]] = False
    return flat_kept.reshape(norms.shape).expand_as(w) & kept


class GroupLasso(MaskMethod):
    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("GL",)
    UNITS = (ROW, COL, CHANNEL)

    ramp = True
    soft = False

    def penalise(self, solver) -> None:
        lam = self.config.sparsity_lambda
        for layer in self.layers:
            if layer.weight.grad is not None:
                w = layer.weight.detach()
                add_group_lasso_grad_(layer.weight.grad, w, group_dims(self.unit, w), lam)

    def select(self, layer: MaskedLayer, ratio: float, solver) -> torch.Tensor:
        w = layer.weight.detach()
        return prune_weakest_groups(w, layer.kept(), group_dims(self.unit, w), ratio)
