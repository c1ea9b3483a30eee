"""MaxPool, AveragePool (ceil mode, count_include_pad), GlobalAveragePool, GlobalMaxPool and
ReduceMean/ReduceMax over the spatial axes -> Caffe Pooling."""

from __future__ import annotations

from prunekit.caffe import caffe_pb2
from prunekit.importer.ops._geometry import crop_spatial, explicit_pads, symmetric_pad
from prunekit.net.layers.pooling import caffe_pooled_size

_PP = caffe_pb2.PoolingParameter


def _pool(method: int):
    def handler(node, b, attrs: dict) -> None:
        _windowed(node, b, attrs, method)
    return handler


def _windowed(node, b, attrs: dict, method: int) -> None:
    if len(node.output) > 1 and node.output[1] and b.graph.consumers(node.output[1]):
        raise b.error("the indices output is used; Caffe's Pooling does not give it")
    shape, out_shape = b.shape(node.input[0]), b.shape(node.output[0])
    if len(shape) != 4:
        raise b.error(f"input of shape {list(shape)}: Caffe pools 2-D (N, C, H, W) only")
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", [1, 1]))
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise b.error(f"dilations {attrs['dilations']}: Caffe pools without dilation")
    begin, end = explicit_pads(b, attrs, shape[2:], kernel, strides, (1, 1))
    if method == _PP.AVE and begin != end:
        raise b.error(f"average pooling with asymmetric pads {begin} / {end}: Caffe's divisor "
                      "counts symmetric padding only")
    if method == _PP.AVE and any(begin) and not attrs.get("count_include_pad", 0):
        raise b.error("average pooling with padding and count_include_pad=0: Caffe's AVE "
                      "divides by the window including the padding")
    ceil = bool(attrs.get("ceil_mode", 0))
    def count(i: int, p: int, any_pad: bool | None = None) -> int:
        any_pad = p > 0 or any(begin) if any_pad is None else any_pad
        return caffe_pooled_size(shape[2 + i], kernel[i], strides[i], p, any_pad, ceil)

    pad, skip = symmetric_pad(b, begin, end, strides, out_shape[2:], count)
    if any(p >= k for p, k in zip(pad, kernel)):
        raise b.error(f"pad {pad} not smaller than the kernel {list(kernel)} (Caffe's limit)")
    have = tuple(count(i, p, any(pad)) for i, p in enumerate(pad))
    exact = have == tuple(out_shape[2:]) and not any(skip)
    lp = b.layer("Pooling", [b.bottom(node.input[0])],
                 outputs=[node.output[0]] if exact else None)
    pp = lp.pooling_param
    pp.pool = method
    pp.kernel_h, pp.kernel_w = (int(k) for k in kernel)
    pp.stride_h, pp.stride_w = (int(s) for s in strides)
    if any(pad):
        pp.pad_h, pp.pad_w = (int(p) for p in pad)
    if not ceil:
        pp.round_mode = _PP.FLOOR
    if not exact:
        crop_spatial(b, lp.top[0], skip, out_shape[2:], out_shape[:2] + have, node.output[0])


def _global(method: int):
    def handler(node, b, attrs: dict) -> None:
        if len(b.shape(node.input[0])) != 4:
            raise b.error("Caffe's global pooling takes (N, C, H, W) inputs")
        lp = b.layer("Pooling", [b.bottom(node.input[0])], outputs=[node.output[0]])
        lp.pooling_param.pool = method
        lp.pooling_param.global_pooling = True
    return handler


def _reduce(method: int):
    """ReduceMean/ReduceMax over axes {2, 3} of a 4-D tensor (``x.mean([2, 3])``): global
    pooling, then a Flatten to (N, C) when keepdims is 0."""
    def handler(node, b, attrs: dict) -> None:
        shape = b.shape(node.input[0])
        axes = attrs.get("axes")
        if len(node.input) > 1 and node.input[1]:
            axes = b.const(node.input[1])
            if axes is None:
                raise b.error("axes must be a constant")
        axes = sorted(int(a) % len(shape) for a in (axes if axes is not None else []))
        if len(shape) != 4 or axes != [2, 3]:
            raise b.error(f"reduces axes {axes} of {list(shape)}: only the spatial axes "
                          "[2, 3] of (N, C, H, W) map to Caffe (global pooling)")
        keep = attrs.get("keepdims", 1)
        lp = b.layer("Pooling", [b.bottom(node.input[0])],
                     outputs=[node.output[0]] if keep else None)
        lp.pooling_param.pool = method
        lp.pooling_param.global_pooling = True
        if not keep:
            b.layer("Flatten", [lp.top[0]], outputs=[node.output[0]], suffix="_flatten")
    return handler


HANDLERS = {
    "MaxPool": _pool(_PP.MAX), "AveragePool": _pool(_PP.AVE),
    "GlobalAveragePool": _global(_PP.AVE), "GlobalMaxPool": _global(_PP.MAX),
    "ReduceMean": _reduce(_PP.AVE), "ReduceMax": _reduce(_PP.MAX),
}
