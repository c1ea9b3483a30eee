"""Caffe ``Bias``: add a blob that covers a span of the bottom's axes, broadcast over the rest.

With one bottom the added blob is learnable, shaped bottom.shape[axis : axis + num_axes]
(num_axes −1: to the end); with two bottoms it is bottom[1], whose shape must match that span.
Scale uses the same rules (``operand_layout``).
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import (
    broadcast_shape, canonical_axis, check_num_bottoms, new_param, require)
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


def broadcast_operand(operand: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """``operand`` viewed so that it lines up with ``x`` from ``axis`` on."""
    return operand.view(broadcast_shape(x.dim(), axis, tuple(operand.shape)))


class Bias(CaffeLayer):
    """top = bottom[0] + b (b learnable, default filler constant 0, or b = bottom[1])."""

    top_reusable = True  # a sum's backward reads nothing

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
