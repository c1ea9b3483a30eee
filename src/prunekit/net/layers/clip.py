"""Caffe ``Clip`` (BVLC): clamp every value to [clip_param.min, clip_param.max].

ReLU6 is Clip(0, 6); ``prunekit import`` maps ONNX Clip here. Channels: C in, C out, element by
element (nothing mixes channels).

Channels (net/channel_rules.py PASS, from Elementwise): channel c of the top is f(channel c) of
the bottom; a constant channel c stays the constant f(c).
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import require
from prunekit.net.layers.activations import Elementwise


class Clip(Elementwise):
    """y = min(max(x, min), max)."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)  # one bottom (Elementwise)
        cp = param.clip_param
        require(self, param.HasField("clip_param"), "clip_param { min max } is required")
        self.min, self.max = float(cp.min), float(cp.max)
        require(self, self.min <= self.max, f"min ({self.min}) must not exceed max ({self.max})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x, self.min, self.max)
