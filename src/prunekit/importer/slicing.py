"""The range an ONNX Slice node cuts, when Caffe's Slice can cut it: one axis, step 1,
constant bounds (clamped as ONNX clamps them)."""

from __future__ import annotations

import numpy as np


def slice_range(node, constants: dict, shape: tuple[int, ...]) -> tuple[int, int, int] | None:
    """(axis, start, stop) of ``node`` on a tensor of ``shape``, or None if it is not a
    one-axis step-1 slice with constant bounds."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if len(node.input) == 1:  # opset < 10: attributes
        starts, ends, axes, steps = attrs.get("starts"), attrs.get("ends"), attrs.get("axes"), None
    else:
        values = []
        for i in range(1, 5):
            name = node.input[i] if i < len(node.input) else ""
            if name and name not in constants:
                return None
            values.append(np.asarray(constants[name]).reshape(-1) if name else None)
        starts, ends, axes, steps = values
    if starts is None or ends is None or len(starts) != 1:
        return None
    if steps is not None and int(steps[0]) != 1:
        return None
    axis = int(axes[0]) % len(shape) if axes is not None else 0
    dim = shape[axis]
    start, stop = (int(np.clip(v + dim if v < 0 else v, 0, dim)) for v in (starts[0], ends[0]))
    return axis, start, max(start, stop)
