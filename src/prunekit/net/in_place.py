"""ReLUs that the prototxt computes in place, run in place by torch too.

Caffe's ``top: "conv1"`` on ``bottom: "conv1"`` overwrites the blob. prunekit's ReLU module
returns a new tensor, which costs an allocation of the activation's size (on a CPU, fresh pages
to fault in) forward and backward; ``torch.relu_`` writes into its input instead, as a
hand-written ``nn.ReLU(inplace=True)`` does. Same values and gradients (ReLU's backward reads
its output either way); the Net (prunekit/net/graph.py) does it only where no one can tell:

* the ReLU is in place in the prototxt and has ``negative_slope: 0``;
* the version of the blob it reads is read by it alone, and was made by a layer whose top is
  a new tensor that its own backward does not read (``top_reusable`` in the layer's file:
  Convolution, InnerProduct, BatchNorm, Scale, Bias, Eltwise; not data layers, whose tops are
  the caller's tensors, nor views such as Flatten or Reshape);
* at run time: neither the ReLU nor that layer is hooked (prunekit/net/hooks.py), and the
  input is not a leaf that requires grad (``prunekit time``'s per-layer loop feeds such leaves).

A module called on its own still returns a new tensor.
"""

from __future__ import annotations

from prunekit.net.blob_versions import BlobVersions
from prunekit.net.layers.activations import ReLU


def in_place_relus(entries, modules, versions: BlobVersions) -> dict[int, int]:
    """{ReLU index: index of the layer that made its bottom} for every ReLU that may run in
    place (``modules``: the Net's layer_modules, by entry key)."""
    found: dict[int, int] = {}
    for i, entry in enumerate(entries):
        relu = modules[entry.key]
        if (not isinstance(relu, ReLU) or relu.negative_slope != 0
                or len(entry.bottoms) != 1 or entry.tops != entry.bottoms):
            continue
        producer = versions.producers[i][0]
        if producer < 0 or versions.sole_reader(producer, entry.bottoms[0]) != i:
            continue
        if getattr(modules[entries[producer].key], "top_reusable", False):
            found[i] = producer
    return found
