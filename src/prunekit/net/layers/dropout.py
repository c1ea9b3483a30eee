"""Caffe ``Dropout``: in training, zero each unit with probability dropout_ratio and scale the
kept ones by 1 / (1 − ratio) (inverted dropout), so TEST is the identity."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import check_num_bottoms, require
from prunekit.net.channel_rules import PASS
from prunekit.net.layers.base import CaffeLayer


class Dropout(CaffeLayer):
    """Train/eval follows ``self.training`` (set by the Net), not the construction phase."""

    channel_rule = PASS

    def channel_constants(self, live, value):
        """Identity in TEST; training drops random units, so a non-zero constant varies."""
        out = live[0].clone()
        if self.training and self.ratio > 0:
            out |= value[0] != 0
        return out, value[0]

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)
        self.ratio = param.dropout_param.dropout_ratio
        require(self, 0.0 <= self.ratio < 1.0,
                f"dropout_ratio must be in [0, 1), got {self.ratio}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.ratio, training=self.training)
