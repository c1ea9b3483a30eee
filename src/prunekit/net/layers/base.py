"""The contract every Caffe layer module follows.

A layer is built from its LayerParameter and the shapes of its bottoms (Caffe's ``LayerSetUp`` +
``Reshape``), so weight shapes are known before any data flows. Its Caffe blobs (the order a
``.caffemodel`` stores them in) are named attributes listed in ``blob_names``; learnable ones are
``nn.Parameter``, state such as BatchNorm statistics are buffers.
"""

from __future__ import annotations

import torch
from torch import nn

from prunekit.net import channel_rules
from prunekit.net.channel_rules import Flow

TRAIN = 0  # caffe.Phase values
TEST = 1


class CaffeLayer(nn.Module):
    """Base class of all layer modules built by the registry.

    Subclasses implement ``forward(*bottoms)`` returning one tensor per top (a tensor when there is
    one top, a tuple otherwise, ``()`` for none).

    Class attributes:
      is_loss:   tops count as losses with loss_weight 1 unless ``loss_weight`` says otherwise.
      is_data:   the layer is a source: the Net calls ``next_batch()`` instead of ``forward``.
      needs_backward: False for layers such as Accuracy whose output is not differentiable.
      top_reusable: the top is a new tensor that the layer's own backward does not read, so
                 an in-place layer after it (ReLU) may overwrite it when nothing else reads it
                 (prunekit/net/in_place.py). False unless the layer's file says otherwise.
      channel_rule: how channels flow through the layer, one of the kinds of
                 prunekit/net/channel_rules.py (None: no rule, so the channel model treats the
                 layer as opaque and pins its channels, naming it).
    """

    is_loss = False
    is_data = False
    needs_backward = True
    top_reusable = False
    channel_rule: str | None = None

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__()
        self.layer_name: str = param.name
        self.layer_type: str = param.type
        self.phase = phase
        self.blob_names: list[str] = []

    def caffe_blobs(self) -> list[torch.Tensor]:
        """The layer's blobs in Caffe order (weights first), as stored in a .caffemodel."""
        return [getattr(self, name) for name in self.blob_names]

    # ------------------------------------------------------------------ channel rule
    def channel_flow(self, bottom_shapes: list[tuple[int, ...]]) -> Flow:
        """This instance's channel rule (prunekit/net/channel_rules.py). The class rule unless
        the layer's file refines it from its parameters."""
        if self.channel_rule is None:
            return channel_rules.no_rule(self.layer_type)
        return Flow(self.channel_rule)

    def channel_constants(self, live: list[torch.Tensor], value: list[torch.Tensor]
                          ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """What a constant channel becomes through a channel-wise layer (compact removes constant
        channels): per bottom, bool ``live[k]`` [C] (depends on the input) and float64
        ``value[k]`` [C] (the constant where not live); returns the top's (live, value), or None
        when the layer cannot be followed (compact then keeps its channels).

        By default every top channel counts as live: a constant going in is not known to stay a
        constant, so nothing coupled to it is removed (safe, never mis-compacted)."""
        return torch.ones_like(live[0]), torch.zeros_like(value[0])
