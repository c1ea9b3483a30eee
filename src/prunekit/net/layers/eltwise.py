"""Caffe ``Eltwise``: element-wise SUM (with optional per-bottom coeff), PROD or MAX."""

from __future__ import annotations

import torch

from prunekit.caffe import caffe_pb2
from prunekit.net.layers._common import check_num_bottoms, require
from prunekit.net.channel_rules import COUPLES
from prunekit.net.layers.base import CaffeLayer

_OP = caffe_pb2.EltwiseParameter


class Eltwise(CaffeLayer):
    """Combine >= 2 same-shaped bottoms. MAX routes the gradient to the first maximal bottom."""

    top_reusable = True  # SUM, PROD and MAX backward read the bottoms (or a mask), not the top
    channel_rule = COUPLES

    def channel_constants(self, live, value):
        """Constant where every bottom is: the coefficient sum, product or maximum."""
        out = torch.stack(live).any(0)
        values = torch.stack(value)
        if self.operation == _OP.SUM:
            result = (torch.tensor(self.coeff, dtype=torch.float64)[:, None] * values).sum(0)
        elif self.operation == _OP.PROD:
            result = values.prod(0)
        else:
            result = values.max(0).values
        return out, torch.where(out, 0.0, result)

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        ep = param.eltwise_param
        check_num_bottoms(self, bottom_shapes, 2, -1)
        first = tuple(bottom_shapes[0])
        require(self, all(tuple(s) == first for s in bottom_shapes),
                f"all bottoms must have the same shape, got {[tuple(s) for s in bottom_shapes]}")
        self.operation = ep.operation
        require(self, self.operation in (_OP.SUM, _OP.PROD, _OP.MAX),
                f"unknown operation {self.operation}")
        require(self, not (self.operation == _OP.PROD and ep.coeff),
                "coeff is only allowed with operation SUM")
        require(self, len(ep.coeff) in (0, len(bottom_shapes)),
                f"expected one coeff per bottom ({len(bottom_shapes)}), got {len(ep.coeff)}")
        self.coeff = list(ep.coeff) or [1.0] * len(bottom_shapes)

    def forward(self, *bottoms: torch.Tensor) -> torch.Tensor:
        if self.operation == _OP.SUM:
            terms = [x if c == 1 else c * x for c, x in zip(self.coeff, bottoms)]
            return sum(terms[1:], terms[0])
        out = bottoms[0]
        for x in bottoms[1:]:
            # where(x > out): ties keep the earlier bottom, as Caffe's argmax mask does.
            out = out * x if self.operation == _OP.PROD else torch.where(x > out, x, out)
        return out
