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
from prunekit.atomic_group import write_files_together
from prunekit.caffe import caffe_pb2
from prunekit.caffe.binaryproto import CAFFEMODEL, serialize_message
from prunekit.compact import Compaction


def compacted_blobs(compaction: Compaction,
                    original: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """The blobs of every layer of the compacted prototxt by name (see the module docstring);
    ``original`` is the masked caffemodel's blobs by layer name (``caffe.layer_blobs``)."""
    out: dict[str, list[np.ndarray]] = {}
    for layer in compaction.net_param.layer:
        if layer.name in out:
            continue
        new = compaction.weights.blobs.get(layer.name)
        out[layer.name] = ([t.detach().float().numpy() for t in new] if new is not None
                           else original.get(layer.name, []))
    return out


def save_compacted(out_model: str, out_weights: str, net_param: caffe_pb2.NetParameter,
                   blobs: dict[str, list[np.ndarray]]) -> None:
    """The compacted prototxt and caffemodel, both or neither (prunekit/atomic_group.py): a
    prototxt whose weights could not be written would not load."""
    model = caffe.net_with_blobs(net_param, blobs)
    write_files_together([
        (out_model, caffe.to_text(net_param).encode("utf-8"), "prototxt"),
        (out_weights, serialize_message(out_weights, model, CAFFEMODEL), "caffemodel")])


def save_blobs(path: str | os.PathLike, net_param: caffe_pb2.NetParameter,
               blobs: dict[str, list[np.ndarray]]) -> None:
    """Write ``blobs`` for the layers of ``net_param`` as a binary ``.caffemodel`` (atomically),
    e.g. a compacted model after :func:`prunekit.compact.fold_bn.fold_batch_norms`."""
    caffe.write_caffemodel(path, caffe.net_with_blobs(net_param, blobs))
