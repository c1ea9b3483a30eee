"""The contract every Caffe layer module follows.

A layer is built from its LayerParameter and the shapes of its bottoms (Caffe's ``LayerSetUp`` +
``Reshape``), so weight shapes are known before any data flows. Its Caffe blobs (the order a
``.caffemodel`` stores them in) are named attributes listed in ``blob_names``; learnable ones are
``nn.Parameter``, state such as BatchNorm statistics are buffers.
"""

from __future__ import annotations

import torch
from torch import nn

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
    """

    is_loss = False
    is_data = False
    needs_backward = True
    top_reusable = False

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__()
        self.layer_name: str = param.name
        self.layer_type: str = param.type
        self.phase = phase
        self.blob_names: list[str] = []

    def caffe_blobs(self) -> list[torch.Tensor]:
        """The layer's blobs in Caffe order (weights first), as stored in a .caffemodel."""
        return [getattr(self, name) for name in self.blob_names]
