"""The compacted prototxt: the input NetParameter with new ``num_output`` / ``group`` / kernel
and pad fields on the layers compaction changed, and nothing else touched.

Data layers of both phases, ``prune_param``, ``param { lr_mult }``, fillers, include rules: all
stay as they were, so the file trains, tests and prunes like the original. A trimmed kernel is
written as ``kernel_h``/``kernel_w`` and ``pad_h``/``pad_w`` (replacing ``kernel_size``/``pad``),
the only form Caffe has for a non-square kernel. Layers are matched by name and type in every
phase, so a TRAIN/TEST pair of one layer changes together.
"""

from __future__ import annotations

from prunekit.caffe import caffe_pb2
from prunekit.compact.slice_weights import LayerChange


def rewrite_net(net_param: caffe_pb2.NetParameter,
                changes: dict[str, LayerChange]) -> caffe_pb2.NetParameter:
    """A copy of ``net_param`` with ``changes`` applied (see the module docstring)."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    for layer in out.layer:
        change = changes.get(layer.name)
        if change is None or change.type != layer.type:
            continue
        if layer.type == "InnerProduct":
            if change.num_output is not None:
                layer.inner_product_param.num_output = change.num_output
        elif layer.type == "Convolution":
            _conv_fields(layer.convolution_param, change)
    return out


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
