"""Caffe ``Split``: one bottom feeding several tops; the gradients of the tops add up."""

from __future__ import annotations

import torch

from prunekit.net.layers._common import check_num_bottoms, single_or_tuple
from prunekit.net.channel_rules import PASS
from prunekit.net.layers.base import CaffeLayer


class Split(CaffeLayer):
    """Each top is a copy, so an in-place layer on one top cannot change the others."""

    channel_rule = PASS

    def channel_constants(self, live, value):
        return live[0].clone(), value[0]

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)
        self.num_tops = max(len(param.top), 1)

    def forward(self, x: torch.Tensor):
        return single_or_tuple([x.clone() for _ in range(self.num_tops)])
