"""``Slim_Channel``: Network Slimming (Liu et al., ICCV 2017).

Liu, Li, Shen, Huang, Yan, Zhang, "Learning Efficient Convolutional Networks through Network
Slimming" (ICCV 2017): train with λ·Σ|γ| on the channel scale factors γ of the BatchNorm layers
(in Caffe, the ``Scale`` layer after a ``BatchNorm``), then remove the channels with the
smallest |γ| and fine-tune.

In prunekit each Convolution with ``prune_param`` must feed a Scale layer (directly or through a
BatchNorm); λ is ``sparsity_lambda`` and λ·sign(γ) is added to γ's gradient every iteration. A
round removes the kept channels of smallest |γ| until ⌊N·prune_ratio·k/R⌋ of the N are gone
(per layer, as ``prune_param`` says; the paper uses one global percentile): the conv's filter,
and γ and β of the Scale, are zeroed and masked, so the channel is exactly 0 and ``prunekit
compact`` removes it.
"""

from __future__ import annotations

import torch

from prunekit.errors import PrunekitError
from prunekit.prune.units import CHANNEL
from prunekit.prune.methods.filter_rank import prune_lowest_rows
from prunekit.prune.methods.mask_method import MaskedLayer, MaskMethod, row_mask


def scale_after(net, conv_name: str):
    """(Scale layer name, module) reading ``conv_name``'s output, through a BatchNorm or not."""
    entries = list(net.named_layers())
    blob = next(e.tops[0] for e, _ in entries if e.name == conv_name)
    for entry, module in entries:
        if not entry.bottoms or entry.bottoms[0] != blob or entry.name == conv_name:
            continue
        if entry.type == "BatchNorm":
            blob = entry.tops[0]
        elif entry.type == "Scale" and len(entry.bottoms) == 1:
            return entry.name, module
    return None, None


class NetworkSlimming(MaskMethod):
    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("Slim",)
    UNITS = (CHANNEL,)

    ramp = True
    soft = False

    def __init__(self, config, solver, net_param, out=None) -> None:
        super().__init__(config, solver, net_param, out)
        blob_index = {(b.layer, b.index): i for i, b in enumerate(solver.blobs)}
        self.scales = []
        for layer in self.layers:
            name, module = scale_after(solver.net, layer.name) if layer.type == "Convolution" else (None, None)
            if module is None:
                raise PrunekitError(
                    f"{config.source}: prune_method '{config.prune_method}' prunes channels by "
                    f"their Scale factor; layer '{layer.name}' has prune_param but no Scale layer "
                    "(after a BatchNorm) reads its output")
            params = [module.scale] + ([module.bias] if getattr(module, "bias_term", False) else [])
            self.scales.append((params, [blob_index[(name, i)] for i in range(len(params))]))

    def penalise(self, solver) -> None:
        lam = self.config.sparsity_lambda
        for params, _ in self.scales:
            gamma = params[0]
            if gamma.grad is not None:
                gamma.grad.add_(lam * torch.sign(gamma.detach()))

    def select(self, layer: MaskedLayer, ratio: float, solver) -> torch.Tensor:
        gamma = self.scales[self.layers.index(layer)][0][0].detach().reshape(-1)
        w = layer.weight.detach()
        kept_rows = layer.kept().reshape(w.shape[0], -1).any(1)
        keep = prune_lowest_rows(gamma.abs(), kept_rows, ratio)
        layer.rows_kept = int(keep.sum())
        return row_mask(keep, w)

    def describe(self, layer: MaskedLayer) -> str:
        return f", {layer.rows_kept}/{layer.weight.shape[0]} channels"

    def _mask_scales(self, solver, grads: bool) -> None:
        for layer, (params, indices) in zip(self.layers, self.scales):
            if layer.mask is None:
                continue
            keep = layer.mask.reshape(layer.mask.shape[0], -1)[:, 0]
            for p, i in zip(params, indices):
                m = keep.reshape(p.shape).to(p.dtype)
                with torch.no_grad():
                    p.mul_(m)
                if grads and p.grad is not None:
                    p.grad.mul_(m)
                solver.history[i].mul_(m)

    def before_update(self, solver) -> None:
        super().before_update(solver)
        self._mask_scales(solver, grads=True)

    def after_update(self, solver) -> None:
        super().after_update(solver)
        self._mask_scales(solver, grads=False)
