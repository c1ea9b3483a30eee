"""Two layer types that exist only for the tests of tests/net/test_layer_channel_rules.py,
registered from there (``LAYER_TYPES[...] = "channel_power_layer:..."``), never in the registry.

``ChannelPower`` is Caffe's Power layer, y = (shift + scale·x)^power, written as a new layer type
would be: one class that declares its channel rule (pass-through) and what a constant becomes
through it. ``NoRule`` is an identity layer whose file declares no channel rule.
"""

from __future__ import annotations

import torch

from prunekit.net.channel_rules import PASS
from prunekit.net.layers.base import CaffeLayer


class ChannelPower(CaffeLayer):
    """(shift + scale·x)^power element-wise: channel c of the top is a function of channel c."""

    channel_rule = PASS

    def __init__(self, param, bottom_shapes, phase) -> None:
        super().__init__(param, bottom_shapes, phase)
        pp = param.power_param
        self.power, self.scale, self.shift = pp.power, pp.scale, pp.shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.shift + self.scale * x) ** self.power

    def channel_constants(self, live, value):
        return live[0].clone(), (self.shift + self.scale * value[0]) ** self.power


class NoRule(CaffeLayer):
    """The identity, from a file that says nothing about channels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()
