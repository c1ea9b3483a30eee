"""Caffe ``Scale``: multiply by a blob spanning some axes (the affine half of BatchNorm).

Shape rules are Bias's (``operand_layout``): a learnable ``scale`` (default filler constant 1)
with one bottom, bottom[1] with two. ``bias_term`` adds a learnable ``bias`` of the same shape
(default filler constant 0). Blob order: scale (one bottom only), then bias.

Channels: the top has the bottom's shape; each channel (or element of the spanned axes) is
scaled on its own. After a BatchNorm the Net may fuse the pair (prunekit/net/fuse_bn_scale.py):
the BatchNorm then applies this layer's blobs and this layer passes its input through.
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import constant_filler, new_param
from prunekit.net.layers.base import CaffeLayer
from prunekit.net.layers.bias import broadcast_operand, operand_layout


class Scale(CaffeLayer):
    """top = bottom[0] · s (+ b), s and b broadcast from ``axis``."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        sp = param.scale_param
        self.axis, shape = operand_layout(self, bottom_shapes, sp.axis, sp.num_axes)
        self.operand_shape = tuple(shape)
        self.learnable = len(bottom_shapes) == 1
        if self.learnable:
            filler = sp.filler if sp.HasField("filler") else constant_filler(sp.filler, 1.0)
            self.scale = new_param(self, shape, filler)
            self.blob_names.append("scale")
        self.bias_term = sp.bias_term
        if self.bias_term:
            self.bias = new_param(self, shape, sp.bias_filler)
            self.blob_names.append("bias")
        self.fused_into: str | None = None  # the BatchNorm that applies this layer, if any

    def own_params(self) -> list[torch.Tensor]:
        """γ (and β) as parameters, whether or not this layer runs them itself."""
        return [p for p in self.parameters() if p.requires_grad]

    def backward_params(self) -> list[torch.Tensor]:
        """None when fused: the BatchNorm's backward computes γ's and β's gradients."""
        return [] if self.fused_into else self.own_params()

    def forward(self, x: torch.Tensor, *operand: torch.Tensor) -> torch.Tensor:
        if self.fused_into:
            return x  # the BatchNorm before already applied γ and β
        return self.affine(x, *operand)

    def affine(self, x: torch.Tensor, *operand: torch.Tensor) -> torch.Tensor:
        """x · s (+ b): what this layer computes."""
        scale = self.scale if self.learnable else operand[0]
        scale = broadcast_operand(scale, x, self.axis)
        if not self.bias_term:
            return x * scale
        # one fused kernel for x·s + b
        return torch.addcmul(broadcast_operand(self.bias, x, self.axis), x, scale)
