"""The compacted prototxt: the input NetParameter with new ``num_output`` / ``group`` / kernel
and pad fields on the layers compaction changed, and nothing else touched.

Data layers of both phases, ``prune_param``, ``param { lr_mult }``, fillers, include rules: all
stay as they were, so the file trains, tests and prunes like the original. A trimmed kernel is
written as ``kernel_h``/``kernel_w`` and ``pad_h``/``pad_w`` (replacing ``kernel_size``/``pad``),
the only form Caffe has for a non-square kernel. A trim the pad cannot express (kernel_trim.py)
reads a crop of the conv's input: one ``Slice`` layer per cropped axis right before the conv
(named ``<conv>_crop_h`` / ``_crop_w``, with the conv's include rules), whose unused pieces go to
a ``Silence``. Layers are matched by name and type in every phase, so a TRAIN/TEST pair of one
layer changes together (the crop assumes the input size the compacted phase had).
"""

from __future__ import annotations

from prunekit.caffe import caffe_pb2
from prunekit.compact.slice_weights import LayerChange


def rewrite_net(net_param: caffe_pb2.NetParameter,
                changes: dict[str, LayerChange]) -> caffe_pb2.NetParameter:
    """A copy of ``net_param`` with ``changes`` applied (see the module docstring)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    del out.layer[:]
    for original in net_param.layer:
        layer = caffe_pb2.LayerParameter()
        layer.CopyFrom(original)
        change = changes.get(layer.name)
        if change is not None and change.type == layer.type:
            if layer.type == "InnerProduct":
                if change.num_output is not None:
                    layer.inner_product_param.num_output = change.num_output
            elif layer.type == "Convolution":
                _conv_fields(layer.convolution_param, change)
                if change.crop is not None:
                    out.layer.extend(_crop_layers(layer, change))
        out.layer.add().CopyFrom(layer)
    return out


def _crop_layers(conv: caffe_pb2.LayerParameter,
                 change: LayerChange) -> list[caffe_pb2.LayerParameter]:
    """Slice + Silence layers that crop the conv's input as ``change.crop`` says; the conv's
    bottom is renamed to the cropped blob."""
    layers = []
    for axis, suffix, crop, size in zip((2, 3), ("h", "w"), change.crop, change.input_size):
        if crop is None:
            continue
        start, length = crop
        points = [p for p in (start, start + length) if 0 < p < size]
        name = f"{conv.name}_crop_{suffix}"
        tops = [f"{name}_{i}" for i in range(len(points) + 1)]
        kept = tops[1] if start > 0 else tops[0]
        cut = caffe_pb2.LayerParameter(name=name, type="Slice", bottom=[conv.bottom[0]], top=tops)
        cut.slice_param.axis = axis
        cut.slice_param.slice_point.extend(points)
        unused = caffe_pb2.LayerParameter(name=f"{name}_unused", type="Silence",
                                          bottom=[t for t in tops if t != kept])
        for extra in (cut, unused):
            extra.include.extend(conv.include)
            extra.exclude.extend(conv.exclude)
        layers += [cut, unused]
        conv.bottom[0] = kept
    return layers


def _conv_fields(cp, change: LayerChange) -> None:
    if change.num_output is not None:
        cp.num_output = change.num_output
    if change.group is not None:
        cp.group = change.group
    if change.kernel is not None:
        del cp.kernel_size[:]
        cp.kernel_h, cp.kernel_w = change.kernel
        del cp.pad[:]
        cp.pad_h, cp.pad_w = change.pad
