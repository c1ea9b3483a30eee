"""Caffe ``Power`` (BVLC): y = (shift + scale·x) ^ power.

``prunekit import`` uses it for arithmetic with one scalar constant (x·c, x + c, x / c) and for
HardSigmoid's affine part (followed by a Clip). Channels: C in, C out, element by element (the
same scale and shift for every channel; nothing mixes channels).
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import check_num_bottoms
from prunekit.net.layers.base import CaffeLayer


class Power(CaffeLayer):
    """(shift + scale · x) ** power, with Caffe's defaults power 1, scale 1, shift 0."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)
        pp = param.power_param
        self.power, self.scale, self.shift = float(pp.power), float(pp.scale), float(pp.shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.scale == 1.0 else x * self.scale
        y = y if self.shift == 0.0 else y + self.shift
        return y if self.power == 1.0 else torch.pow(y, self.power)
