"""``ShuffleChannel`` (ShuffleNet's Caffe layer, not in BVLC): permute the channels of axis 1.

The C channels are viewed as [group, C / group] and transposed to [C / group, group]: output
channel j·group + i is input channel i·(C / group) + j. ShuffleNetV2's ``channel_shuffle``
(reshape, transpose, reshape) is this with group 2; ``prunekit import`` maps that ONNX pattern
here (shuffle_channel_param, LayerParameter field 1160).

Channels: C in, C out, a fixed permutation of them (:func:`source_channel` gives it), so the
channel count per group must stay a multiple of ``group``.
"""

from __future__ import annotations

import torch

from prunekit.net.layers._common import check_num_bottoms, require
from prunekit.net.channel_rules import OPAQUE
from prunekit.net.layers.base import CaffeLayer


def source_channel(out_channel: int, channels: int, group: int) -> int:
    """The input channel that output channel ``out_channel`` comes from."""
    j, i = divmod(out_channel, group)
    return i * (channels // group) + j


class ShuffleChannel(CaffeLayer):
    """x.view(N, g, C/g, ...).transpose(1, 2).reshape(N, C, ...).

    Channels: OPAQUE (net/channel_rules.py). Output channel j·g + i is input channel i·(C/g) + j,
    so removing one channel would need the same j removed from every group to keep C/g whole;
    compact does not rewrite ``group`` that way, so the channels on both sides are pinned.
    """

    channel_rule = OPAQUE

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)
        shape = tuple(bottom_shapes[0])
        self.group = int(param.shuffle_channel_param.group)
        require(self, self.group >= 1, "group must be >= 1")
        require(self, len(shape) >= 2 and shape[1] % self.group == 0,
                f"the channel count of {shape} must be a multiple of group {self.group}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c = x.shape[0], x.shape[1]
        rest = x.shape[2:]
        return x.reshape(n, self.group, c // self.group, *rest).transpose(1, 2).reshape(
            n, c, *rest)
