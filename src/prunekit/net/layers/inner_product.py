"""Caffe ``InnerProduct`` (fully connected).

Axes from ``axis`` on are flattened into K inputs; the top is bottom.shape[:axis] + (num_output,).
The weight is [num_output, K], or [K, num_output] with ``transpose: true`` (Caffe stores it that
way then, so the blob is kept as stored and multiplied accordingly).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import (
    canonical_axis, check_num_bottoms, count, new_param, require)
from prunekit.net.channel_rules import FILTERS, OPAQUE, FilterGeometry, Flow
from prunekit.net.layers.base import CaffeLayer


class InnerProduct(CaffeLayer):
    """y = x·Wᵀ + b over the flattened trailing axes."""

    top_reusable = True  # the product's backward needs x and W, not y
    channel_rule = FILTERS

    def channel_flow(self, bottom_shapes) -> Flow:
        """Filters when the flattened axes start at the channels (axis 1); else opaque."""
        if self.axis != 1 or len(bottom_shapes[0]) < 2:
            return Flow(OPAQUE, f": InnerProduct with axis {self.axis} (only axis 1 is traced)")
        return Flow(FILTERS)

    def filter_geometry(self, bottom_shape: tuple[int, ...]) -> FilterGeometry:
        """Row n = output n; input channel c = columns c·HW … +HW of the C×H×W input."""
        n = int(self.weight.shape[1] if self.transpose else self.weight.shape[0])
        aware = self.axis == 1 and len(bottom_shape) >= 2
        channels = int(bottom_shape[1]) if len(bottom_shape) >= 2 else 1
        per_channel = math.prod(bottom_shape[2:]) if aware else 1
        return FilterGeometry(n, 1, per_channel, channels, False)

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        ip = param.inner_product_param
        check_num_bottoms(self, bottom_shapes, 1)
        shape = tuple(bottom_shapes[0])
        self.axis = canonical_axis(self, ip.axis, len(shape))
        require(self, ip.num_output > 0, "num_output must be > 0")
        self.num_input = count(shape, self.axis)
        self.transpose = ip.transpose
        weight_shape = ((self.num_input, ip.num_output) if self.transpose
                        else (ip.num_output, self.num_input))
        self.weight = new_param(self, weight_shape, ip.weight_filler)
        self.blob_names = ["weight"]
        self.bias_term = ip.bias_term
        if self.bias_term:
            self.bias = new_param(self, (ip.num_output,), ip.bias_filler)
            self.blob_names.append("bias")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Flatten axes >= axis, then multiply by the weight and add the bias."""
        x = x.flatten(self.axis)
        bias = self.bias if self.bias_term else None
        if self.transpose:
            y = x @ self.weight
            return y + bias if bias is not None else y
        return F.linear(x, self.weight, bias)
