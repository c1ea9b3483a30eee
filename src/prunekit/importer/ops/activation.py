"""Element-wise activations and other one-in one-out ops: Relu, LeakyRelu, PRelu, Clip (ReLU6),
Sigmoid, Tanh, Elu, HardSigmoid (Power + Clip), HardSwish, Swish (SiLU), Softmax, Dropout,
Identity."""

from __future__ import annotations

import numpy as np

_FLT_MAX = float(np.finfo(np.float32).max)


def _simple(type_: str):
    def handler(node, b, attrs: dict) -> None:
        b.layer(type_, [b.bottom(node.input[0])], outputs=[node.output[0]])
    return handler


def leaky_relu(node, b, attrs: dict) -> None:
    lp = b.layer("ReLU", [b.bottom(node.input[0])], outputs=[node.output[0]])
    lp.relu_param.negative_slope = float(attrs.get("alpha", 0.01))


def prelu(node, b, attrs: dict) -> None:
    slope = b.const(node.input[1])
    if slope is None:
        raise b.error("the slope must be a constant (an initializer)")
    shape = b.shape(node.input[0])
    lp = b.layer("PReLU", [b.bottom(node.input[0])], outputs=[node.output[0]])
    if slope.size == 1:
        lp.prelu_param.channel_shared = True
        b.set_blobs(lp, [slope.reshape(1)])
        return
    padded = slope.reshape((1,) * (len(shape) - slope.ndim) + slope.shape)
    if len(shape) < 2 or padded.shape[1] != shape[1] or padded.size != shape[1]:
        raise b.error(f"slope of shape {list(slope.shape)}: Caffe's PReLU has one slope per "
                      f"channel (axis 1 of {list(shape)}) or one shared")
    b.set_blobs(lp, [padded.reshape(-1)])


def clip(node, b, attrs: dict) -> None:
    """opset >= 11: min/max are optional constant inputs; before: attributes."""
    low = attrs.get("min", -_FLT_MAX)
    high = attrs.get("max", _FLT_MAX)
    for index, name in ((1, "min"), (2, "max")):
        if len(node.input) > index and node.input[index]:
            value = b.const(node.input[index])
            if value is None:
                raise b.error(f"{name} must be a constant")
            low, high = (float(value), high) if name == "min" else (low, float(value))
    if low == 0 and high >= _FLT_MAX:
        b.layer("ReLU", [b.bottom(node.input[0])], outputs=[node.output[0]])
        return
    lp = b.layer("Clip", [b.bottom(node.input[0])], outputs=[node.output[0]])
    lp.clip_param.min, lp.clip_param.max = float(low), float(high)


def elu(node, b, attrs: dict) -> None:
    lp = b.layer("ELU", [b.bottom(node.input[0])], outputs=[node.output[0]])
    lp.elu_param.alpha = float(attrs.get("alpha", 1.0))


def hard_sigmoid(node, b, attrs: dict) -> None:
    """max(0, min(1, α·x + β)) = Power(scale α, shift β) then Clip(0, 1)."""
    power = b.layer("Power", [b.bottom(node.input[0])], suffix="_affine")
    power.power_param.scale = float(attrs.get("alpha", 0.2))
    power.power_param.shift = float(attrs.get("beta", 0.5))
    lp = b.layer("Clip", [power.top[0]], outputs=[node.output[0]])
    lp.clip_param.min, lp.clip_param.max = 0.0, 1.0


def swish(node, b, attrs: dict) -> None:
    lp = b.layer("Swish", [b.bottom(node.input[0])], outputs=[node.output[0]])
    if attrs.get("alpha", 1.0) != 1.0:  # ONNX Swish: x · sigmoid(alpha · x)
        lp.swish_param.beta = float(attrs["alpha"])


def softmax(node, b, attrs: dict) -> None:
    """opset >= 13: one axis (default −1). Before: the axes from ``axis`` (default 1) on are
    flattened into one, which is a one-axis softmax only when that is the last non-1 axis."""
    shape = b.shape(node.input[0])
    default = -1 if b.graph.opset >= 13 else 1
    axis = attrs.get("axis", default)
    axis = axis + len(shape) if axis < 0 else axis
    if b.graph.opset < 13 and any(d != 1 for d in shape[axis + 1:]):
        raise b.error(f"opset {b.graph.opset} Softmax over the flattened axes {axis}.. of "
                      f"{list(shape)}: Caffe's Softmax takes one axis")
    lp = b.layer("Softmax", [b.bottom(node.input[0])], outputs=[node.output[0]])
    lp.softmax_param.axis = int(axis)


def dropout(node, b, attrs: dict) -> None:
    if len(node.output) > 1 and node.output[1] and b.graph.consumers(node.output[1]):
        raise b.error("its mask output is used; Caffe's Dropout has none")
    ratio = attrs.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        value = b.const(node.input[1])
        if value is None:
            raise b.error("ratio must be a constant")
        ratio = float(value)
    lp = b.layer("Dropout", [b.bottom(node.input[0])], outputs=[node.output[0]])
    lp.dropout_param.dropout_ratio = float(ratio)


def identity(node, b, attrs: dict) -> None:
    b.alias(node.output[0], b.bottom(node.input[0]))


HANDLERS = {
    "Relu": _simple("ReLU"), "Sigmoid": _simple("Sigmoid"), "Tanh": _simple("TanH"),
    "HardSwish": _simple("HardSwish"), "LeakyRelu": leaky_relu, "PRelu": prelu, "Clip": clip,
    "Elu": elu, "HardSigmoid": hard_sigmoid, "Swish": swish, "Softmax": softmax,
    "Dropout": dropout, "Identity": identity,
}
