"""Caffe ``LRN`` (local response normalisation, AlexNet/GoogLeNet).

ACROSS_CHANNELS: y = x · (k + α/n · Σ x²)^−β, the sum over n = local_size channels centred on c
(zero beyond the edges). WITHIN_CHANNEL: Caffe composes it from layers (square → AVE pooling with
kernel n, pad (n−1)/2, stride 1 → power(shift 1, scale α, power −β) → product), so
y = x · (1 + α/n² · Σ x²)^−β over the zero-padded n×n window; k is not used there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.caffe import caffe_pb2
from prunekit.net.layers._common import check_num_bottoms, require
from prunekit.net.channel_rules import OPAQUE, PASS, Flow
from prunekit.net.layers.base import CaffeLayer

_LRN = caffe_pb2.LRNParameter


class LRN(CaffeLayer):
    """Caffe LRN, both regions; local_size must be odd, as in Caffe."""

    channel_rule = PASS

    def channel_flow(self, bottom_shapes) -> Flow:
        """WITHIN_CHANNEL is channel-wise. ACROSS_CHANNELS keeps a zero channel zero, but
        removing a channel would shift its neighbours' windows: opaque."""
        if self.across:
            return Flow(OPAQUE, ": LRN ACROSS_CHANNELS normalises over neighbouring channels, "
                                "so removing one would shift its neighbours' windows")
        return Flow(PASS)

    def channel_constants(self, live, value):
        """Its zero-padded window changes constants at the borders: a non-zero one is live."""
        out = live[0] | (value[0] != 0)
        return out, torch.where(out, 0.0, value[0])

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        lp = param.lrn_param
        check_num_bottoms(self, bottom_shapes, 1)
        shape = tuple(bottom_shapes[0])
        require(self, len(shape) == 4, f"input must have 4 axes (N, C, H, W), got {shape}")
        require(self, lp.local_size % 2 == 1,
                f"local_size must be odd, got {lp.local_size}")
        require(self, lp.norm_region in (_LRN.ACROSS_CHANNELS, _LRN.WITHIN_CHANNEL),
                f"unknown norm_region {lp.norm_region}")
        self.size = lp.local_size
        self.alpha, self.beta, self.k = lp.alpha, lp.beta, lp.k
        self.across = lp.norm_region == _LRN.ACROSS_CHANNELS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x times the (shift + α · mean of x² over the window) to the power −β."""
        pad = (self.size - 1) // 2
        if self.across:
            squares = F.pad((x * x).unsqueeze(1), (0, 0, 0, 0, pad, pad))
            mean = F.avg_pool3d(squares, (self.size, 1, 1), stride=1).squeeze(1)
            return x * (self.k + self.alpha * mean).pow(-self.beta)
        mean = F.avg_pool2d(x * x, self.size, stride=1, padding=pad, count_include_pad=True)
        return x * (1 + self.alpha * mean).pow(-self.beta)
