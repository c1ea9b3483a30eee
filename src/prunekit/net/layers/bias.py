"""Caffe ``Bias``: add a blob that covers a span of the bottom's axes, broadcast over the rest.

With one bottom the added blob is learnable, shaped bottom.shape[axis : axis + num_axes]
(num_axes −1: to the end); with two bottoms it is bottom[1], whose shape must match that span.
Scale uses the same rules (``operand_layout``).
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import (
    broadcast_shape, canonical_axis, check_num_bottoms, new_param, require)
from prunekit.net.channel_rules import AFFINE, Flow
from prunekit.net.layers.base import CaffeLayer


def operand_layout(layer, bottom_shapes: list[tuple[int, ...]], axis: int,
                   num_axes: int) -> tuple[int, tuple[int, ...]]:
    """(first axis covered, operand shape) for Bias/Scale, with Caffe's checks.

    The operand is a learnable blob for one bottom, bottom[1] for two.
    """
    check_num_bottoms(layer, bottom_shapes, 1, 2)
    shape = tuple(bottom_shapes[0])
    if len(bottom_shapes) == 2:
        operand = tuple(bottom_shapes[1])
        if not operand:  # a scalar applies everywhere (Caffe sets axis 0)
            return 0, operand
        axis = canonical_axis(layer, axis, len(shape))
        require(layer, shape[axis:axis + len(operand)] == operand,
                f"bottom[1] shape {operand} does not match bottom[0] shape {shape} "
                f"from axis {axis}")
        return axis, operand
    axis = canonical_axis(layer, axis, len(shape))
    require(layer, num_axes >= -1, f"num_axes must be >= 0, or -1 for all; got {num_axes}")
    end = len(shape) if num_axes == -1 else axis + num_axes
    require(layer, end <= len(shape),
            f"axis {axis} + num_axes {num_axes} extends past the bottom's {len(shape)} axes")
    return axis, shape[axis:end]


def operand_flow(layer, bottom_shapes: list[tuple[int, ...]]) -> Flow:
    """Channel rule of Bias/Scale: per-channel affine. With two bottoms, bottom[1]'s channels
    (its axis 1) go with bottom[0]'s when they line up (``axis`` 0 and an operand of N×C×…: a
    squeeze-excitation scale); otherwise bottom[1] is pinned."""
    operand = tuple(bottom_shapes[1]) if len(bottom_shapes) > 1 else ()
    aligned = len(bottom_shapes) > 1 and layer.axis == 0 and len(operand) >= 2
    return Flow(AFFINE, couple_bottoms=aligned)


def operand_per_channel(layer, t: torch.Tensor, c: int):
    """(the learnable operand's first value per channel, whether it is the same everywhere in
    the channel) as float64 [C]; None when it is not a scalar or one value (map) per channel
    along axis 1."""
    t = t.detach().double()
    if t.dim() == 0:
        return t.expand(c), torch.ones(c, dtype=torch.bool)
    if layer.axis != 1 or int(t.shape[0]) != c:
        return None
    flat = t.reshape(c, -1)
    return flat[:, 0], (flat == flat[:, :1]).all(1)


def broadcast_operand(operand: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """``operand`` viewed so that it lines up with ``x`` from ``axis`` on."""
    return operand.view(broadcast_shape(x.dim(), axis, tuple(operand.shape)))


class Bias(CaffeLayer):
    """top = bottom[0] + b (b learnable, default filler constant 0, or b = bottom[1])."""

    top_reusable = True  # a sum's backward reads nothing
    channel_rule = AFFINE

    def channel_flow(self, bottom_shapes) -> Flow:
        return operand_flow(self, bottom_shapes)

    def channel_constants(self, live, value):
        """c + b: b a learnable scalar or per-channel operand, or bottom[1] lined up by
        channel (channel_flow); anything else cannot be followed (None)."""
        if not self.learnable:
            if len(live) < 2 or live[1].shape != live[0].shape:
                return None
            out = live[0] | live[1]
            return out, torch.where(out, 0.0, value[0] + value[1])
        bias = operand_per_channel(self, self.bias, len(value[0]))
        if bias is None:
            return None
        out = live[0] | ~bias[1]
        return out, torch.where(out, 0.0, value[0] + bias[0])

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        bp = param.bias_param
        self.axis, shape = operand_layout(self, bottom_shapes, bp.axis, bp.num_axes)
        self.learnable = len(bottom_shapes) == 1
        if self.learnable:
            self.bias = new_param(self, shape, bp.filler)
            self.blob_names = ["bias"]

    def forward(self, x: torch.Tensor, *operand: torch.Tensor) -> torch.Tensor:
        bias = self.bias if self.learnable else operand[0]
        return x + broadcast_operand(bias, x, self.axis)
