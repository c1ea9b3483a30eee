"""NetSpec in → NetSpec out: every decomposed layer becomes two layers, in place.

A conv ``L`` becomes ``L_v`` (kernel d_h×1, row stride/pad/dilation, g·K outputs, no bias) then
``L_h`` (kernel 1×d_w, column stride/pad/dilation, the original outputs and bias_term); an
InnerProduct ``L`` becomes ``L_red`` (K outputs, no bias) then ``L_rec``. The second layer keeps
the original top, so the rest of the net is untouched. Both copy the layer's other fields
(phase rules, fillers, lr_mult/decay_mult; the weight's ParamSpec goes to both, the bias's to the
second); ParamSpec names are dropped, since the new blobs have new shapes. The prototxt is
rewritten for every phase; the blobs come from the built net of one phase.
"""

from __future__ import annotations

import numpy as np

from prunekit import caffe
from prunekit.caffe import caffe_pb2
from prunekit.decompose.fc import split_fc
from prunekit.decompose.spatial import split_conv
from prunekit.errors import PrunekitError
from prunekit.net.graph import Net

SUFFIXES = {"conv": ("_v", "_h"), "fc": ("_red", "_rec")}


def new_blobs(net: Net, ranks: dict[str, tuple[str, int]]) -> dict[str, list[np.ndarray]]:
    """Blobs of the new layers, by new layer name (float32 arrays)."""
    out: dict[str, list[np.ndarray]] = {}
    for name, (kind, rank) in ranks.items():
        module = net.layer(name)
        first, second = SUFFIXES[kind]
        if kind == "conv":
            a, b = split_conv(module.weight, module.group, rank)
        else:
            a, b = split_fc(module.weight, module.transpose, rank)
        out[name + first] = [a.numpy()]
        out[name + second] = [b.numpy()] + ([module.bias.detach().float().numpy()]
                                            if module.bias_term else [])
    return out


def rewrite_net(net_param, ranks: dict[str, tuple[str, int]], geometry: dict[str, object]):
    """A copy of ``net_param`` with the layers of ``ranks`` split; ``geometry`` holds each conv's
    :class:`ConvGeometry` (per-axis values resolved by the built layer)."""
    names = {lp.name for lp in net_param.layer}
    for name, (kind, _) in ranks.items():
        for suffix in SUFFIXES[kind]:
            if name + suffix in names:
                raise PrunekitError(f"layer '{name}': cannot split it, the net already has a "
                                    f"layer named '{name + suffix}'")
    out = type(net_param)()
    out.CopyFrom(net_param)
    del out.layer[:]
    for lp in net_param.layer:
        if lp.name not in ranks:
            out.layer.add().CopyFrom(lp)
            continue
        kind, rank = ranks[lp.name]
        split = _split_conv_layer if kind == "conv" else _split_fc_layer
        for new in split(lp, rank, geometry.get(lp.name)):
            out.layer.add().CopyFrom(new)
    return out


def _pair(lp, kind: str):
    first, second = caffe_pb2.LayerParameter(), caffe_pb2.LayerParameter()
    first.CopyFrom(lp)
    second.CopyFrom(lp)
    a, b = SUFFIXES[kind]
    first.name, second.name = lp.name + a, lp.name + b
    del first.top[:], second.bottom[:], first.blobs[:], second.blobs[:]
    first.top.append(first.name)
    second.bottom.append(first.name)
    del first.param[1:]
    for p in (*first.param, *second.param):
        p.ClearField("name")
    return first, second


def _split_conv_layer(lp, rank: int, g):
    first, second = _pair(lp, "conv")
    for layer, kernel, stride, pad, dilation in (
            (first, (g.kernel[0], 1), (g.stride[0], 1), (g.pad[0], 0), (g.dilation[0], 1)),
            (second, (1, g.kernel[1]), (1, g.stride[1]), (0, g.pad[1]), (1, g.dilation[1]))):
        cp = layer.convolution_param
        for field in ("kernel_size", "stride", "pad", "dilation", "kernel_h", "kernel_w",
                      "stride_h", "stride_w", "pad_h", "pad_w"):
            cp.ClearField(field)
        cp.kernel_h, cp.kernel_w = kernel
        cp.stride_h, cp.stride_w = stride
        cp.pad_h, cp.pad_w = pad
        if dilation != (1, 1):
            cp.dilation.extend(dilation)
    first.convolution_param.num_output = rank * max(lp.convolution_param.group, 1)
    first.convolution_param.bias_term = False
    first.convolution_param.ClearField("bias_filler")
    return first, second


def _split_fc_layer(lp, rank: int, _geometry):
    first, second = _pair(lp, "fc")
    first.inner_product_param.num_output = rank
    first.inner_product_param.bias_term = False
    first.inner_product_param.ClearField("bias_filler")
    for layer in (first, second):
        layer.inner_product_param.transpose = False
    return first, second


def decomposed_caffemodel(net_param, original: dict[str, list[np.ndarray]],
                          blobs: dict[str, list[np.ndarray]]):
    """Every layer of the decomposed prototxt once (prototxt order) with its blobs: the new ones
    for split layers, the original file's for the others."""
    return caffe.net_with_blobs(net_param, {**original, **blobs})
