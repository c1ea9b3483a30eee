"""Caffe ``Slice``: cut one bottom along ``axis`` (or legacy ``slice_dim``) into the tops.

With slice_point p1 < p2 < ... the tops are [0, p1), [p1, p2), ..., [pk, dim); without, the axis
is split into len(top) equal parts.
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import check_num_bottoms, require, single_or_tuple
from prunekit.net.channel_rules import OPAQUE
from prunekit.net.layers.base import CaffeLayer
from prunekit.net.layers.concat import legacy_axis


class Slice(CaffeLayer):
    """torch.split by Caffe's slice points."""

    channel_rule = OPAQUE  # compact does not rewrite slice_point (prunekit/net/channel_rules.py)

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        sp = param.slice_param
        check_num_bottoms(self, bottom_shapes, 1)
        shape = tuple(bottom_shapes[0])
        self.axis = legacy_axis(self, sp, "slice_dim", len(shape))
        num_tops = len(param.top)
        require(self, num_tops >= 1, "needs at least one top")
        self.sizes = self._slice_sizes(list(sp.slice_point), num_tops, shape[self.axis])

    def _slice_sizes(self, points: list[int], num_tops: int, dim: int) -> list[int]:
        """Sizes of the slices, checking the points as Caffe does."""
        if not points:
            require(self, dim % num_tops == 0,
                    f"{num_tops} tops do not evenly divide axis {self.axis} of size {dim}")
            return [dim // num_tops] * num_tops
        require(self, len(points) == num_tops - 1,
                f"expected {num_tops - 1} slice_point values (one fewer than the tops), "
                f"got {len(points)}")
        bounds = [0] + points + [dim]
        require(self, all(a < b for a, b in zip(bounds, bounds[1:])),
                f"slice_point {points} must be strictly increasing within (0, {dim})")
        return [b - a for a, b in zip(bounds, bounds[1:])]

    def forward(self, x: torch.Tensor):
        return single_or_tuple(torch.split(x, self.sizes, dim=self.axis))
