"""Caffe ``Silence``: consumes bottoms so they do not show up as net outputs; no tops."""

from __future__ import annotations

import torch

from prunekit.net.channel_rules import READS_NOTHING
from prunekit.net.layers.base import CaffeLayer


class Silence(CaffeLayer):
    """Returns nothing; its bottoms get no gradient from it."""

    channel_rule = READS_NOTHING

    def forward(self, *bottoms: torch.Tensor) -> tuple:
        return ()
