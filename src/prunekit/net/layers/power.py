"""Caffe ``Power`` (BVLC): y = (shift + scale·x) ^ power.

``prunekit import`` uses it for arithmetic with one scalar constant (x·c, x + c, x / c) and for
HardSigmoid's affine part (followed by a Clip). Channels: C in, C out, element by element (the
same scale and shift for every channel; nothing mixes channels).

Channels (net/channel_rules.py PASS, from Elementwise): channel c of the top is f(channel c) of
the bottom; a constant channel c stays the constant f(c).
"""

from __future__ import annotations

import torch

from prunekit.net.layers.activations import Elementwise


class Power(Elementwise):
    """(shift + scale · x) ** power, with Caffe's defaults power 1, scale 1, shift 0."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)  # one bottom (Elementwise)
        pp = param.power_param
        self.power, self.scale, self.shift = float(pp.power), float(pp.scale), float(pp.shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x if self.scale == 1.0 else x * self.scale
        y = y if self.shift == 0.0 else y + self.shift
        return y if self.power == 1.0 else torch.pow(y, self.power)
