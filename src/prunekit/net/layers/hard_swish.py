"""``HardSwish`` (not in BVLC; ONNX's and MobileNetV3's): y = x · min(max(x + 3, 0), 6) / 6.

The constants are ONNX HardSwish's (α = 1/6, β = 0.5), so the layer has no parameters.
Channels: C in, C out, element by element (nothing mixes channels).

Channels (net/channel_rules.py PASS, from Elementwise): channel c of the top is f(channel c) of
the bottom; a constant channel c stays the constant f(c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers.activations import Elementwise


class HardSwish(Elementwise):
    """x · relu6(x + 3) / 6 (torch's hardswish)."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)  # one bottom (Elementwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.hardswish(x)
