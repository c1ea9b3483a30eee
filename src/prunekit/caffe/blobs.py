"""BlobProto ⇄ numpy, and the weight blobs of a NetParameter by layer name.

Caffe nets are float32, so arrays come back as float32 whatever the storage (``data`` or
``double_data``). Shapes come from ``shape`` or, in files older than 2015, from the legacy
num/channels/height/width fields. A value count that does not match the shape is a corrupt or
hand-edited file and raises PrunekitError rather than returning a silently wrong array.
"""

from __future__ import annotations

import numpy as np

from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError

_LEGACY_DIMS = ("num", "channels", "height", "width")


def blob_shape(blob: caffe_pb2.BlobProto, where: str = "blob") -> tuple[int, ...]:
    """The blob's shape: ``shape.dim``, else legacy (N, C, H, W), else empty ``(0,)``."""
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    if any(blob.HasField(name) for name in _LEGACY_DIMS):
        return tuple(int(getattr(blob, name)) for name in _LEGACY_DIMS)
    if blob.data or blob.double_data:
        raise PrunekitError(f"{where}: has values but no shape (neither 'shape' nor num/"
                            f"channels/height/width)")
    return (0,)


def blob_to_array(blob: caffe_pb2.BlobProto, where: str = "blob") -> np.ndarray:
    """Return the blob's values as a float32 array of its shape; ``where`` names it in errors."""
    shape = blob_shape(blob, where)
    values = blob.double_data if blob.double_data else blob.data
    count = int(np.prod(shape, dtype=np.int64))
    if len(values) != count:
        raise PrunekitError(f"{where}: has {len(values)} values but its shape "
                            f"{list(shape)} needs {count}")
    # fromiter: about 2.5x faster than asarray on a protobuf repeated field (VGG-16's fc6 holds
    # 103M values, so this is seconds per snapshot read)
    return np.fromiter(values, dtype=np.float32, count=count).reshape(shape)


def array_to_blob(arr: np.ndarray, legacy: bool = False) -> caffe_pb2.BlobProto:
    """Store ``arr`` as float32 ``data``.

    ``legacy=True`` writes num/channels/height/width instead of ``shape`` (for tools that only
    read the old fields); arrays with fewer than 4 axes are padded with leading 1s as Caffe does.
    """
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    blob = caffe_pb2.BlobProto()
    if legacy:
        _set_legacy_shape(blob, arr.shape)
    else:
        blob.shape.dim.extend(arr.shape)
    blob.MergeFromString(_packed_data_field(arr))
    return blob


def _packed_data_field(arr: np.ndarray) -> bytes:
    """``BlobProto.data`` (field 5, packed float) as wire bytes, straight from the array's memory.

    Parsing these is several times faster than ``data.extend(arr.tolist())`` and never builds a
    Python list of floats, which for VGG-16's 138M weights took gigabytes and ~30 s per snapshot."""
    raw = arr.astype("<f4", copy=False).tobytes()
    length, size = bytearray(), len(raw)
    while True:
        byte, size = size & 0x7F, size >> 7
        length.append(byte | (0x80 if size else 0))
        if not size:
            break
    return b"\x2a" + bytes(length) + raw if raw else b""


def layer_blobs(net_param: caffe_pb2.NetParameter, source: str = "net") -> dict[str, list[np.ndarray]]:
    """Map each layer name to its blob arrays, in order (weights, bias, ...).

    Works for ``layer`` and for not-yet-upgraded V1 ``layers``. Caffe matches weights to layers by
    name, so two layers with the same name that both carry blobs are ambiguous and rejected;
    a same-named layer without blobs (the usual TRAIN/TEST data-layer pair) does not count.
    """
    layers = net_param.layer if net_param.layer else net_param.layers
    result: dict[str, list[np.ndarray]] = {}
    for layer in layers:
        arrays = [blob_to_array(b, f"{source}: layer '{layer.name}' blob {i}")
                  for i, b in enumerate(layer.blobs)]
        if result.get(layer.name) and arrays:
            raise PrunekitError(f"{source}: two layers named '{layer.name}' both carry weights")
        if arrays or layer.name not in result:
            result[layer.name] = arrays
    return result


def set_layer_blobs(layer_param, arrays) -> None:
    """Replace the blobs of a LayerParameter (or V1LayerParameter) with ``arrays``."""
    del layer_param.blobs[:]
    for arr in arrays:
        layer_param.blobs.append(array_to_blob(arr))


def net_with_blobs(net_param: caffe_pb2.NetParameter,
                   blobs: dict[str, list[np.ndarray]]) -> caffe_pb2.NetParameter:
    """A caffemodel NetParameter: every layer of ``net_param`` once per name (prototxt order,
    as Caffe's snapshots store a TRAIN/TEST pair) with its blobs from ``blobs`` (none for
    layers it lacks)."""
    out = caffe_pb2.NetParameter(name=net_param.name)
    seen: set[str] = set()
    for layer in net_param.layer:
        if layer.name in seen:
            continue
        seen.add(layer.name)
        lp = out.layer.add()
        lp.CopyFrom(layer)
        set_layer_blobs(lp, blobs.get(layer.name, []))
    return out


def _set_legacy_shape(blob: caffe_pb2.BlobProto, shape: tuple[int, ...]) -> None:
    if len(shape) > 4:
        raise PrunekitError(f"a {len(shape)}-d array {list(shape)} cannot be stored in the "
                            f"legacy 4-d num/channels/height/width fields")
    padded = (1,) * (4 - len(shape)) + tuple(shape)
    for name, dim in zip(_LEGACY_DIMS, padded):
        setattr(blob, name, int(dim))
