"""Caffe ``Scale``: multiply by a blob spanning some axes (the affine half of BatchNorm).

Shape rules are Bias's (``operand_layout``): a learnable ``scale`` (default filler constant 1)
with one bottom, bottom[1] with two. ``bias_term`` adds a learnable ``bias`` of the same shape
(default filler constant 0). Blob order: scale (one bottom only), then bias.

Channels: the top has the bottom's shape; each channel (element of the spanned axes) is scaled
on its own. After a BatchNorm the Net may run the pair as one op (prunekit/net/fuse_bn_scale.py:
BatchNorm.forward_with_scale with this layer's blobs).
"""

from __future__ import annotations

import torch

from prunekit.net.channel_rules import AFFINE
from prunekit.net.layers._common import constant_filler, new_param
from prunekit.net.layers.base import CaffeLayer
from prunekit.net.layers.bias import (
    broadcast_operand, operand_flow, operand_layout, operand_per_channel)


class Scale(CaffeLayer):
    """top = bottom[0] · s (+ b), s and b broadcast from ``axis``."""

    top_reusable = True  # the product's backward needs the bottom and s, not the top
    channel_rule = AFFINE

    def channel_flow(self, bottom_shapes):
        return operand_flow(self, bottom_shapes)

    def channel_constants(self, live, value):
        """c·s (+ b): s and b learnable scalars or per-channel operands, or s = bottom[1] lined
        up by channel (channel_flow: a constant 0 on either side gives 0); anything else cannot
        be followed (None)."""
        if not self.learnable:
            if len(live) < 2 or live[1].shape != live[0].shape:
                return None
            zero = (~live[0] & (value[0] == 0)) | (~live[1] & (value[1] == 0))
            out = (live[0] | live[1]) & ~zero
            product = value[0] * value[1]
            if self.bias_term:
                bias = operand_per_channel(self, self.bias, len(value[0]))
                if bias is None:
                    return None
                out = out | ~bias[1]
                product = product + bias[0]
            return out, torch.where(out, 0.0, product)
        c = len(value[0])
        scale = operand_per_channel(self, self.scale, c)
        if scale is None:
            return None
        out = live[0] | (~scale[1] & (value[0] != 0))
        result = value[0] * scale[0]
        if self.bias_term:
            bias = operand_per_channel(self, self.bias, c)
            if bias is None:
                return None
            out = out | ~bias[1]
            result = result + bias[0]
        return out, torch.where(out, 0.0, result)

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

    def forward(self, x: torch.Tensor, *operand: torch.Tensor) -> torch.Tensor:
        scale = self.scale if self.learnable else operand[0]
        scale = broadcast_operand(scale, x, self.axis)
        if not self.bias_term:
            return x * scale
        # one kernel for x·s + b
        return torch.addcmul(broadcast_operand(self.bias, x, self.axis), x, scale)
