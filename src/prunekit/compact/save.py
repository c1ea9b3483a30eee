"""The compacted ``.caffemodel``: what ``net.weights.save_caffemodel`` writes, for every phase.

``save_caffemodel`` writes the layers of one built net. The compacted file should replace the
masked one for training too, so it holds every layer of the compacted prototxt (once per name,
prototxt order, as Caffe's snapshots do): the compacted blobs for layers of the compacted phase,
the original file's blobs for layers outside it (they were pinned, so their shapes did not
change), none for layers without weights.
"""

from __future__ import annotations

import os

import numpy as np

from prunekit import caffe
from prunekit.caffe import caffe_pb2
from prunekit.compact import Compaction


def compacted_caffemodel(compaction: Compaction,
                         original: dict[str, list[np.ndarray]]) -> caffe_pb2.NetParameter:
    """A NetParameter with the compacted weights (see the module docstring); ``original`` is
    the masked caffemodel's blobs by layer name (``caffe.layer_blobs``)."""
    out = caffe_pb2.NetParameter(name=compaction.net_param.name)
    seen: set[str] = set()
    for layer in compaction.net_param.layer:
        if layer.name in seen:
            continue
        seen.add(layer.name)
        lp = out.layer.add()
        lp.CopyFrom(layer)
        new = compaction.weights.blobs.get(layer.name)
        arrays = ([t.detach().float().numpy() for t in new] if new is not None
                  else original.get(layer.name, []))
        caffe.set_layer_blobs(lp, arrays)
    return out


def save_compacted(path: str | os.PathLike, compaction: Compaction,
                   original: dict[str, list[np.ndarray]]) -> None:
    """Write the compacted weights as a binary ``.caffemodel`` (atomically)."""
    caffe.write_caffemodel(path, compacted_caffemodel(compaction, original))
