"""``Mag_Weight``: Han et al. 2015 iterative magnitude pruning, unstructured.

Han, Pool, Tran, Dally, "Learning both Weights and Connections for Efficient Neural Networks"
(NIPS 2015): train, remove every connection of layer l with |w| < q·σ_l (σ_l the standard
deviation of that layer's weights), retrain the survivors from their trained values with the
mask on weights and gradients, and repeat with more aggressive thresholds.

prunekit states the per-layer goal as ``prune_param.prune_ratio`` (the fraction of the layer's
weights to remove at the end): round k of R keeps ``(1 − prune_ratio)^(k/R)`` of the layer
(each round removes the same share of the survivors), which is Han's rule with the quality q chosen per layer and round so that the threshold q·σ (σ of the
layer's surviving weights) removes exactly that fraction; each round's [app] line prints that q.
Biases are never pruned (as in the paper's counts).
"""

from __future__ import annotations

import torch

from prunekit.prune.units import WEIGHT
from prunekit.prune.methods.mask_method import MaskedLayer, MaskMethod, count_to_prune


def magnitude_keep(w: torch.Tensor, kept: torch.Tensor, ratio: float) -> tuple[torch.Tensor, float]:
    """(keep mask, threshold): prune the smallest-|w| weights until ``ratio`` of all of ``w``
    is pruned (already pruned weights count first). The threshold is the largest pruned |w|
    (0 when nothing new is pruned); ties are broken by position, so the count is exact."""
    n = count_to_prune(w.numel(), ratio)
    score = torch.where(kept, w.abs(), torch.full_like(w, -1.0)).reshape(-1)
    keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
    if n <= 0:
        return keep.reshape(w.shape) & kept, 0.0
    order = torch.argsort(score, stable=True)[:n]
    keep[order] = False
    threshold = float(score[order].max().clamp(min=0))
    return keep.reshape(w.shape), threshold


class MagnitudeWeight(MaskMethod):
    """Han's prune/retrain rounds as a solver hook."""

    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("Mag",)
    UNITS = (WEIGHT,)

    ramp = True
    soft = False

    def round_ratio(self, layer: MaskedLayer, k: int) -> float:
        """Geometric ramp: round k keeps (1 − prune_ratio)^(k/R) of the layer, i.e. every round
        removes the same share of what is left (a linear ramp makes the last cut the largest:
        from 39% to 8% kept, which LeNet-300-100 did not recover from in 1,000 iterations)."""
        return 1.0 - (1.0 - layer.prune_ratio) ** (k / self.rounds)

    def select(self, layer: MaskedLayer, ratio: float, solver) -> torch.Tensor:
        w = layer.weight.detach()
        kept = layer.kept()
        survivors = w[kept]
        sigma = float(survivors.std()) if survivors.numel() > 1 else 0.0
        keep, threshold = magnitude_keep(w, kept, ratio)
        layer.quality = threshold / sigma if sigma > 0 else 0.0
        return keep

    def describe(self, layer: MaskedLayer) -> str:
        q = getattr(layer, "quality", None)
        return "" if q is None else f", threshold = {q:.3f} x std"
