"""Caffe ``Softmax`` along ``axis`` (default 1)."""

from __future__ import annotations

import torch

from prunekit.net.layers._common import canonical_axis, check_num_bottoms
from prunekit.net.channel_rules import REDUCES
from prunekit.net.layers.base import CaffeLayer


class Softmax(CaffeLayer):
    """exp(x − max) / Σ exp(x − max) over ``axis``."""

    channel_rule = REDUCES

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)
        self.axis = canonical_axis(self, param.softmax_param.axis, len(bottom_shapes[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=self.axis)
