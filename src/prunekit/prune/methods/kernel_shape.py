"""``GL_Shape``: learning a smaller rectangular kernel (e.g. 5x5 → 5x2) per convolution.

The kernel-shape idea of Huan Wang's notes (docs/methods/kernel_shape.md), with SSL's group lasso
(Wen et al., NIPS 2016) as the sparsifier: the groups are whole **kernel rows** W[:, :, h, :]
and **kernel columns** W[:, :, :, w] of a 2-D convolution, i.e. the same kernel position across
all filters and all input channels, so that a zeroed row or column shrinks the layer's dense
kernel. Each iteration adds λ·w_g/‖w_g‖₂ (``sparsity_lambda``) for every kernel row and column.

In round k the kept taps become the contiguous window [a, a+h') × [b, b+w') inside the current
window with at most (1 − prune_ratio·k/R)·kh·kw taps that keeps the largest Σw² (every window is
scored); everything outside it is zeroed and masked. ``prunekit compact`` then emits the smaller
kernel with the padding adjusted where Caffe's symmetric ``pad`` can express it (see
docs/compact.md: with pad 0 and stride 1 the trimmed taps cannot be removed densely).
"""

from __future__ import annotations

import torch

from prunekit.errors import PrunekitError
from prunekit.prune.units import SHAPE
from prunekit.prune.methods.group_lasso import add_group_lasso_grad_
from prunekit.prune.methods.mask_method import MaskedLayer, MaskMethod


def max_taps(ratio: float, kh: int, kw: int) -> int:
    """Taps a kh×kw kernel may keep when ``ratio`` of them are to go (at least one)."""
    return max(1, int((1.0 - ratio) * kh * kw + 1e-9))


def best_window(energy: torch.Tensor, allowed: torch.Tensor, max_taps: int) -> tuple[int, int, int, int]:
    """(a, h, b, w): the window rows a..a+h−1, columns b..b+w−1 with h·w ≤ ``max_taps``, inside
    the ``allowed`` taps (bool [kh, kw]), that keeps the most ``energy`` ([kh, kw], Σw² per tap);
    ties go to the larger, then the first window."""
    kh, kw = energy.shape
    best, best_key = None, None
    for h in range(1, kh + 1):
        for w in range(1, kw + 1):
            if h * w > max_taps:
                continue
            for a in range(kh - h + 1):
                for b in range(kw - w + 1):
                    if not bool(allowed[a:a + h, b:b + w].all()):
                        continue
                    key = (float(energy[a:a + h, b:b + w].sum()), h * w)
                    if best_key is None or key > best_key:
                        best, best_key = (a, h, b, w), key
    if best is None:
        raise ValueError("no window fits")
    return best


class KernelShapeLasso(MaskMethod):
    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("GL",)
    UNITS = (SHAPE,)

    ramp = True
    soft = False

    def check_layer(self, name: str, type_: str, weight: torch.Tensor) -> None:
        if type_ != "Convolution" or weight.dim() != 4:
            raise PrunekitError(
                f"{self.config.source}: prune_method '{self.config.prune_method}' learns 2-D "
                f"kernel shapes; layer '{name}' ({type_}, weight {tuple(weight.shape)}) has "
                "prune_param but is not a 2-D Convolution")

    def penalise(self, solver) -> None:
        lam = self.config.sparsity_lambda
        for layer in self.layers:
            if layer.weight.grad is not None:
                w = layer.weight.detach()
                add_group_lasso_grad_(layer.weight.grad, w, (0, 1, 3), lam)  # kernel rows
                add_group_lasso_grad_(layer.weight.grad, w, (0, 1, 2), lam)  # kernel columns

    def select(self, layer: MaskedLayer, ratio: float, solver) -> torch.Tensor:
        w = layer.weight.detach()
        kh, kw = w.shape[2:]
        energy = w.double().pow(2).sum(dim=(0, 1)).cpu()
        allowed = layer.kept().any(0).any(0).cpu()
        a, h, b, width = best_window(energy, allowed, max_taps(ratio, kh, kw))
        layer.shape_kept = (h, width)
        keep = torch.zeros(kh, kw, dtype=torch.bool)
        keep[a:a + h, b:b + width] = True
        return keep.to(w.device).expand_as(w)

    def describe(self, layer: MaskedLayer) -> str:
        h, w = getattr(layer, "shape_kept", layer.weight.shape[2:])
        return f", kernel {h}x{w}"
