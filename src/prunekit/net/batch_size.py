"""Change the batch size a NetParameter declares, for ``prunekit time --batch_size`` and tests.

Caffe fixes the batch in the prototxt (Input shapes, data_param.batch_size, ...). Timing the same
net at batch 2 on a CPU and batch 64 on a GPU should not need two prototxts, so this rewrites the
first dimension of every source layer in a copy of the message.
"""

from __future__ import annotations


def with_batch_size(net_param, batch_size: int):
    """Return a copy of ``net_param`` whose data/input layers produce ``batch_size`` samples."""
    out = type(net_param)()
    out.CopyFrom(net_param)
    for shape in out.input_shape:
        if len(shape.dim):
            shape.dim[0] = batch_size
    for i in range(0, len(out.input_dim), 4):
        out.input_dim[i] = batch_size
    for layer in out.layer:
        _set_layer_batch(layer, batch_size)
    return out


def _set_layer_batch(layer, batch_size: int) -> None:
    if layer.type == "Input":
        for shape in layer.input_param.shape:
            if len(shape.dim):
                shape.dim[0] = batch_size
    elif layer.type == "Data":
        layer.data_param.batch_size = batch_size
    elif layer.type == "ImageData":
        layer.image_data_param.batch_size = batch_size
    elif layer.type == "DummyData":
        for shape in layer.dummy_data_param.shape:
            if len(shape.dim):
                shape.dim[0] = batch_size
        for i in range(len(layer.dummy_data_param.num)):
            layer.dummy_data_param.num[i] = batch_size


def declared_batch_size(net_param, phase: int) -> int | None:
    """The batch size the ``phase`` net of ``net_param`` declares: that of its first source layer
    (Input, Data, ImageData, DummyData, or the legacy ``input_shape``/``input_dim``), None when it
    has none. The inverse of :func:`with_batch_size`, for tools that time a net at the batch it
    would run with (``prunekit compact --column-conv auto``)."""
    from prunekit.net.state_rules import layer_included

    for shape in net_param.input_shape:
        if len(shape.dim):
            return int(shape.dim[0])
    if len(net_param.input_dim):
        return int(net_param.input_dim[0])
    for layer in net_param.layer:
        if layer_included(layer, phase):
            batch = _layer_batch(layer)
            if batch:
                return batch
    return None


def _layer_batch(layer) -> int | None:
    if layer.type == "Input":
        dims = [s.dim[0] for s in layer.input_param.shape if len(s.dim)]
        return int(dims[0]) if dims else None
    if layer.type == "Data":
        return int(layer.data_param.batch_size)
    if layer.type == "ImageData":
        return int(layer.image_data_param.batch_size)
    if layer.type == "DummyData":
        dims = [s.dim[0] for s in layer.dummy_data_param.shape if len(s.dim)]
        dims += list(layer.dummy_data_param.num)
        return int(dims[0]) if dims else None
    return None
