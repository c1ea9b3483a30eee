"""Caffe ``Reshape``: replace axes [axis, axis + num_axes) by ``shape``.

In ``shape`` a 0 copies the bottom's dimension at that position and one −1 is inferred from the
total count; axis may be negative (−1 = after the last axis), num_axes −1 means "to the end".
"""

from __future__ import annotations

import math

import torch

from prunekit.net.layers._common import check_num_bottoms, layer_error, require
from prunekit.net.channel_rules import OPAQUE
from prunekit.net.layers.base import CaffeLayer


class Reshape(CaffeLayer):
    """A view with Caffe's 0 / −1 rules; the top shape is recomputed per input shape."""

    channel_rule = OPAQUE  # its dims name channel counts

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        rp = param.reshape_param
        check_num_bottoms(self, bottom_shapes, 1)
        self.dims = [int(d) for d in rp.shape.dim]
        require(self, all(d >= -1 for d in self.dims), f"shape dims must be >= -1, got {self.dims}")
        require(self, self.dims.count(-1) <= 1,
                f"shape {self.dims} contains more than one -1 (at most one can be inferred)")
        self.axis, self.num_axes = rp.axis, rp.num_axes
        require(self, self.num_axes >= -1, f"num_axes must be >= 0, or -1 for all; "
                                           f"got {self.num_axes}")
        self.top_shape(tuple(bottom_shapes[0]))

    def top_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output shape for a bottom of ``shape`` (Caffe's ReshapeLayer::Reshape)."""
        start = self.axis if self.axis >= 0 else len(shape) + self.axis + 1
        require(self, 0 <= start <= len(shape),
                f"axis {self.axis} out of range for a {len(shape)}-axis bottom")
        end = len(shape) if self.num_axes == -1 else start + self.num_axes
        require(self, end <= len(shape),
                f"axis + num_axes = {end} is past the bottom's {len(shape)} axes")
        new = []
        for i, d in enumerate(self.dims):
            if d == 0:
                require(self, start + i < len(shape),
                        f"shape has a 0 at position {i} but the bottom {shape} has no axis "
                        f"{start + i} to copy")
                d = shape[start + i]
            new.append(d)
        top = list(shape[:start]) + new + list(shape[end:])
        total = math.prod(shape)
        if -1 in new:
            known = math.prod(d for d in top if d != -1)
            if known == 0 or total % known:
                raise layer_error(self, f"bottom count {total} (shape {shape}) is not divisible "
                                        f"by the product of the specified dimensions ({known})")
            top[start + new.index(-1)] = total // known
        require(self, math.prod(top) == total,
                f"output count {math.prod(top)} (shape {tuple(top)}) must match input count "
                f"{total} (shape {shape})")
        return tuple(top)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.top_shape(tuple(x.shape)))
