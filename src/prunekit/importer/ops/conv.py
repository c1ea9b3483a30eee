"""Conv -> Convolution, ConvTranspose -> Deconvolution (groups incl. depthwise, dilation;
asymmetric pads by padding symmetrically and cropping with Slice layers)."""

from __future__ import annotations

import numpy as np

from prunekit.importer.ops._geometry import crop_spatial, explicit_pads, symmetric_pad


def _weights(b, node) -> tuple[np.ndarray, np.ndarray | None]:
    w = b.const(node.input[1])
    if w is None:
        raise b.error("the weight input must be a constant (an initializer)")
    bias = b.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if len(node.input) > 2 and node.input[2] and bias is None:
        raise b.error("the bias input must be a constant (an initializer)")
    return w, bias


def _fill(cp, num_output: int, kernel, strides, pad, dilations, group: int, bias) -> None:
    cp.num_output = int(num_output)
    for field, values in (("kernel_size", kernel), ("stride", strides), ("pad", pad),
                          ("dilation", dilations)):
        values = [int(v) for v in values]
        if field != "kernel_size" and all(v == (0 if field == "pad" else 1) for v in values):
            continue
        getattr(cp, field).extend(values[:1] if len(set(values)) == 1 else values)
    if group != 1:
        cp.group = int(group)
    cp.bias_term = bias is not None


def convolution(node, b, attrs: dict) -> None:
    w, bias = _weights(b, node)
    x_shape, out_shape = b.shape(node.input[0]), b.shape(node.output[0])
    n = len(w.shape) - 2
    kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
    strides = tuple(attrs.get("strides", [1] * n))
    dilations = tuple(attrs.get("dilations", [1] * n))
    begin, end = explicit_pads(b, attrs, x_shape[2:], kernel, strides, dilations)
    def count(i: int, p: int) -> int:
        return (x_shape[2 + i] + 2 * p - (dilations[i] * (kernel[i] - 1) + 1)) // strides[i] + 1

    pad, skip = symmetric_pad(b, begin, end, strides, out_shape[2:], count)
    have = tuple(count(i, p) for i, p in enumerate(pad))
    exact = tuple(have) == tuple(out_shape[2:]) and not any(skip)
    lp = b.layer("Convolution", [b.bottom(node.input[0])],
                 outputs=[node.output[0]] if exact else None)
    _fill(lp.convolution_param, w.shape[0], kernel, strides, pad, dilations,
          attrs.get("group", 1), bias)
    b.set_blobs(lp, [w] + ([bias] if bias is not None else []))
    if not exact:
        crop_spatial(b, lp.top[0], skip, out_shape[2:], out_shape[:2] + have, node.output[0])


def conv_transpose(node, b, attrs: dict) -> None:
    """ONNX output = s·(in − 1) + output_padding + extent − begin − end; Caffe's
    Deconvolution gives s·(in − 1) + extent − 2·pad, so pad = min(begin, end − output_padding)
    and the rest is cropped. ``output_shape`` is honoured through the inferred shape."""
    w, bias = _weights(b, node)
    x_shape, out_shape = b.shape(node.input[0]), b.shape(node.output[0])
    n = len(w.shape) - 2
    group = attrs.get("group", 1)
    kernel = tuple(attrs.get("kernel_shape", w.shape[2:]))
    strides = tuple(attrs.get("strides", [1] * n))
    dilations = tuple(attrs.get("dilations", [1] * n))
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"", ""):
        raise b.error("auto_pad is not supported on ConvTranspose; export with explicit pads")
    pads = list(attrs.get("pads", [0] * (2 * n)))
    begin, end = pads[:n], pads[n:]
    out_pad = list(attrs.get("output_padding", [0] * n))
    pad = [min(bg, e - op) for bg, e, op in zip(begin, end, out_pad)]
    if min(pad) < 0:
        raise b.error(f"output_padding {out_pad} larger than the end pads {end}: the extra "
                      "outputs Caffe's Deconvolution cannot produce")
    have = tuple(s * (size - 1) + d * (k - 1) + 1 - 2 * p for size, s, d, k, p in
                 zip(x_shape[2:], strides, dilations, kernel, pad))
    skip = [bg - p for bg, p in zip(begin, pad)]
    exact = tuple(have) == tuple(out_shape[2:]) and not any(skip)
    lp = b.layer("Deconvolution", [b.bottom(node.input[0])],
                 outputs=[node.output[0]] if exact else None)
    _fill(lp.convolution_param, w.shape[1] * group, kernel, strides, pad, dilations, group, bias)
    b.set_blobs(lp, [w] + ([bias] if bias is not None else []))
    if not exact:
        crop_spatial(b, lp.top[0], skip, out_shape[2:], out_shape[:2] + have, node.output[0])


HANDLERS = {"Conv": convolution, "ConvTranspose": conv_transpose}
