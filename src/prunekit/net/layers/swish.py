"""Caffe ``Swish`` (BVLC): y = x · sigmoid(β·x) (SiLU when β = 1, EfficientNet's activation).

``prunekit import`` maps ONNX's ``Mul(x, Sigmoid(x))`` (how SiLU is exported) here. Channels:
C in, C out, element by element (nothing mixes channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import check_num_bottoms
from prunekit.net.layers.base import CaffeLayer


class Swish(CaffeLayer):
    """x · sigmoid(beta · x); beta from swish_param (default 1)."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)
        self.beta = float(param.swish_param.beta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.beta == 1.0:
            return F.silu(x)
        return x * torch.sigmoid(self.beta * x)
