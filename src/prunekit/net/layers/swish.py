"""Caffe ``Swish`` (BVLC): y = x · sigmoid(β·x) (SiLU when β = 1, EfficientNet's activation).

``prunekit import`` maps ONNX's ``Mul(x, Sigmoid(x))`` (how SiLU is exported) here. Channels:
C in, C out, element by element (nothing mixes channels).

Channels (net/channel_rules.py PASS, from Elementwise): channel c of the top is f(channel c) of
the bottom; a constant channel c stays the constant f(c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers.activations import Elementwise


class Swish(Elementwise):
    """x · sigmoid(beta · x); beta from swish_param (default 1)."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)  # one bottom (Elementwise)
        self.beta = float(param.swish_param.beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.beta == 1.0:
            return F.silu(x)
        return x * torch.sigmoid(self.beta * x)
