"""Caffe ``PReLU``: a learnable negative slope per channel (axis 1), or one shared slope."""

from __future__ import annotations

import torch

from prunekit.net.layers._common import (
    check_num_bottoms, constant_filler, new_param, require)
from prunekit.net.channel_rules import AFFINE
from prunekit.net.layers.base import CaffeLayer


class PReLU(CaffeLayer):
    """max(x, 0) + a_c · min(x, 0); blob ``slope`` [C] (or [1] with channel_shared).

    Caffe's default filler is constant 0.25 (He et al. 2015), not the usual constant 0.
    """

    channel_rule = AFFINE

    def channel_constants(self, live, value):
        v = value[0]
        slope = self.slope.detach().double()
        slope = slope.expand_as(v) if self.channel_shared else slope
        return live[0].clone(), torch.where(v > 0, v, v * slope)

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        pp = param.prelu_param
        check_num_bottoms(self, bottom_shapes, 1)
        shape = tuple(bottom_shapes[0])
        require(self, len(shape) >= 2, f"input must have at least 2 axes, got {shape}")
        self.channel_shared = pp.channel_shared
        filler = pp.filler if pp.HasField("filler") else constant_filler(pp.filler, 0.25)
        self.slope = new_param(self, (1,) if self.channel_shared else (shape[1],), filler)
        self.blob_names = ["slope"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope = self.slope if self.channel_shared else self.slope.view(
            (1, -1) + (1,) * (x.dim() - 2))
        # where(), not clamp sums: at x == 0 Caffe's gradient is the slope alone.
        return torch.where(x > 0, x, slope * x)
