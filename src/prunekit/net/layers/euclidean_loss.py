"""Caffe ``EuclideanLoss``: Σ (a − b)² / (2N), N = bottom[0].shape[0]."""

from __future__ import annotations

import torch

from prunekit.net.layers._common import check_num_bottoms, count, require
from prunekit.net.channel_rules import REDUCES
from prunekit.net.layers.base import CaffeLayer


class EuclideanLoss(CaffeLayer):
    """Both bottoms get gradients, as in Caffe. Shapes need only agree in count per item."""

    channel_rule = REDUCES

    is_loss = True

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 2)
        a, b = (tuple(s) for s in bottom_shapes)
        require(self, len(a) >= 1 and len(b) >= 1 and count(a, 1) == count(b, 1),
                f"inputs must have the same count per item: {a} vs {b}")

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        diff = a.reshape(a.shape[0], -1) - b.reshape(b.shape[0], -1).to(a.dtype)
        return (diff * diff).sum() / (2 * a.shape[0])
