"""Caffe ``Flatten``: merge axes axis..end_axis (default 1..−1) into one."""

from __future__ import annotations

import torch

from prunekit.net.layers._common import canonical_axis, check_num_bottoms, require
from prunekit.net.channel_rules import OPAQUE
from prunekit.net.layers.base import CaffeLayer


class Flatten(CaffeLayer):
    """torch.flatten between Caffe's canonical start and end axes."""

    channel_rule = OPAQUE  # channels become part of one axis

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        fp = param.flatten_param
        check_num_bottoms(self, bottom_shapes, 1)
        num_axes = len(bottom_shapes[0])
        self.start = canonical_axis(self, fp.axis, num_axes, "axis")
        self.end = canonical_axis(self, fp.end_axis, num_axes, "end_axis")
        require(self, self.start <= self.end,
                f"axis ({self.start}) must not come after end_axis ({self.end})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, self.start, self.end)
