"""Weights in and out of a Net: ``.caffemodel`` by layer name, with shape checks; weight sharing
between the TRAIN net and its TEST nets.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.net.graph import Net


def load_caffemodel(net: Net, path: str | os.PathLike) -> None:
    """Copy the blobs of every same-named layer of the caffemodel at ``path`` into ``net``.

    Caffe's ``CopyTrainedLayersFrom``: layers the file has but the net lacks are ignored; layers the
    net has but the file lacks keep their filler values; a blob count or shape that differs is an
    error naming the layer, the blob and both shapes. Caffe does this silently; prunekit warns
    naming the layers that kept their fillers, and refuses a file matching no layer at all
    (:func:`report_match`).
    """
    model = caffe.read_caffemodel(path)
    load_net_param_blobs(net, caffe.layer_blobs(model, str(path)), str(path), report=True)


def load_net_param_blobs(net: Net, blobs_by_layer: dict[str, list[np.ndarray]], source: str,
                         report: bool = False) -> None:
    """Copy already-decoded blobs (layer name → arrays) into ``net``; see :func:`load_caffemodel`
    (``report``: warn about / refuse a partial or empty match, for files the user gave)."""
    log = get_logger()
    targets = {entry.name: module for entry, module in net.named_layers()}
    matched = []
    for layer_name, arrays in blobs_by_layer.items():
        module = targets.get(layer_name)
        if module is None or not arrays:
            if arrays:
                log.info("Ignoring source layer %s", layer_name)
            continue
        _copy_layer_blobs(module, layer_name, arrays, source, net.source)
        matched.append(layer_name)
    if report:
        report_match(net, blobs_by_layer, matched, source)


def _names(names: list[str], most: int = 12) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def report_match(net: Net, blobs_by_layer: dict[str, list[np.ndarray]], matched: list[str],
                 source: str) -> None:
    """Say which weight layers of ``net`` the file ``source`` did not set (they keep their
    fillers), and refuse a file that sets none of them: with every layer at its filler the
    run would be meaningless (e.g. a caffemodel of another net, or of renamed layers)."""
    wanted = [e.name for e, m in net.named_layers() if len(m.caffe_blobs())]
    kept = [name for name in dict.fromkeys(wanted) if name not in matched]
    if not wanted or not kept:
        return
    if not matched:
        offered = [name for name, arrays in blobs_by_layer.items() if arrays]
        raise PrunekitError(
            f"{source}: none of its weight layers ({_names(offered) or 'none'}) has the name of a "
            f"weight layer of the net ({_names(wanted)}); is it the caffemodel of this prototxt?")
    get_logger().warning("%s: sets %d of the net's %d weight layers; these keep their fillers: %s",
                         source, len(matched), len(set(wanted)), _names(kept))


def _copy_layer_blobs(module, layer_name: str, arrays: list[np.ndarray], source: str,
                      net_source: str) -> None:
    blobs = module.caffe_blobs()
    if len(arrays) != len(blobs):
        raise PrunekitError(
            f"{source}: layer '{layer_name}' has {len(arrays)} blob(s) in the model file but "
            f"the net's layer ({net_source}) expects {len(blobs)}"
        )
    for index, (array, target) in enumerate(zip(arrays, blobs)):
        value = _match_shape(array, tuple(target.shape), layer_name, index, source, net_source)
        with torch.no_grad():
            target.copy_(torch.from_numpy(value).to(target.dtype))


def _match_shape(array: np.ndarray, shape: tuple[int, ...], layer: str, index: int, source: str,
                 net_source: str):
    """Accept Caffe's legacy 4-D (num, channels, height, width) blobs padded with leading 1s."""
    if tuple(array.shape) == shape:
        return array
    padded = (1,) * (4 - len(shape)) + shape if len(shape) <= 4 else None
    if array.ndim == 4 and padded == tuple(array.shape):
        return array.reshape(shape)
    raise PrunekitError(
        f"{source}: layer '{layer}' blob {index}: shape mismatch, the model file has "
        f"{list(array.shape)} but the net ({net_source}) expects {list(shape)}"
    )


def net_blobs(net: Net) -> dict[str, list[np.ndarray]]:
    """Every layer's current blobs as float32 CPU arrays by layer name (``caffe.layer_blobs``'
    form), e.g. to rewrite a built net's prototxt and load the result into a new net."""
    return {entry.name: [t.detach().to("cpu", torch.float32).numpy()
                         for t in module.caffe_blobs()]
            for entry, module in net.named_layers()}


def net_to_caffemodel(net: Net):
    """A NetParameter with every layer of ``net`` and its current blobs, as Caffe's ToProto."""
    out = caffe.caffe_pb2.NetParameter(name=net.net_name)
    for entry, module in net.named_layers():
        lp = out.layer.add()
        lp.CopyFrom(entry.param)
        del lp.blobs[:]
        arrays = [t.detach().to("cpu", torch.float32).numpy() for t in module.caffe_blobs()]
        caffe.set_layer_blobs(lp, arrays)
    return out


def save_caffemodel(net: Net, path: str | os.PathLike) -> None:
    """Write ``net``'s weights as a binary ``.caffemodel`` (atomically)."""
    caffe.write_caffemodel(path, net_to_caffemodel(net))


def share_weights(target: Net, source: Net) -> None:
    """Make ``target``'s layers use ``source``'s tensors (Caffe's ShareTrainedLayersWith).

    Test nets see the train net's current weights without copies. Layers are matched by name;
    the tensors are the same objects, so call this after both nets are on their device.
    """
    sources = {entry.name: module for entry, module in source.named_layers()}
    for entry, module in target.named_layers():
        donor = sources.get(entry.name)
        if donor is None:
            continue
        for attr, theirs in zip(module.blob_names, donor.caffe_blobs()):
            mine = getattr(module, attr)
            if tuple(mine.shape) != tuple(theirs.shape):
                raise PrunekitError(
                    f"layer '{entry.name}': blob '{attr}' is {list(mine.shape)} in the "
                    f"{'TEST' if target.phase else 'TRAIN'} net but {list(theirs.shape)} in the "
                    "TRAIN net; layers with the same name must have the same blobs"
                )
            if attr in module._parameters:
                module._parameters[attr] = theirs
            else:
                module._buffers[attr] = theirs
