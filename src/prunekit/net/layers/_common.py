"""Helpers shared by the layer modules: Caffe-style validation that names the layer.

Caffe aborts with a CHECK failure on a bad parameter; prunekit raises a PrunekitError instead, and
every message starts with the layer's name and type so the user can find it in the prototxt.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from prunekit.errors import PrunekitError
from prunekit.net.fillers import fill_
from prunekit.net.memory import check_fits, check_shape, shape_bytes


def layer_error(layer, message: str) -> PrunekitError:
    """A PrunekitError whose message starts with "layer '<name>' (<type>):"."""
    return PrunekitError(f"layer '{layer.layer_name}' ({layer.layer_type}): {message}")


def require(layer, condition: bool, message: str) -> None:
    """Raise :func:`layer_error` with ``message`` unless ``condition`` holds (Caffe's CHECK)."""
    if not condition:
        raise layer_error(layer, message)


def check_num_bottoms(layer, bottom_shapes: Sequence[tuple[int, ...]], low: int,
                      high: int | None = None) -> None:
    """Check the bottom count is in [low, high] (high=None: exactly ``low``; -1: unbounded)."""
    high = low if high is None else high
    n = len(bottom_shapes)
    ok = n >= low and (high < 0 or n <= high)
    if not ok:
        want = str(low) if high == low else (f"at least {low}" if high < 0 else f"{low} to {high}")
        raise layer_error(layer, f"expected {want} bottom blob(s), got {n}")


def canonical_axis(layer, axis: int, num_axes: int, what: str = "axis") -> int:
    """Caffe's Blob::CanonicalAxisIndex: accept -num_axes <= axis < num_axes, return it >= 0."""
    require(layer, -num_axes <= axis < num_axes,
            f"{what} {axis} out of range for a {num_axes}-axis blob")
    return axis + num_axes if axis < 0 else axis


def count(shape: Sequence[int], start: int = 0, end: int | None = None) -> int:
    """Product of ``shape[start:end]`` (Caffe's Blob::count(start, end)); 1 for an empty range."""
    return math.prod(shape[start:end])


def check_label_count(layer, shape: tuple[int, ...], label_shape: tuple[int, ...],
                      axis: int) -> None:
    """One label per prediction: count(label) == count(0, axis) · count(axis + 1)."""
    positions = count(shape, 0, axis) * count(shape, axis + 1)
    require(layer, count(label_shape) == positions,
            f"label count {count(label_shape)} (shape {label_shape}) must equal the number of "
            f"predictions {positions} (prediction shape {shape}, class axis {axis})")


def new_param(layer, shape: Sequence[int], filler_param) -> torch.nn.Parameter:
    """A learnable float32 blob of ``shape`` filled by ``filler_param``; errors name the layer.

    The shape is checked first (positive, and small enough for the memory left), so a
    ``num_output: 2000000000`` is a one-line error, not a failed or fatal allocation."""
    where = f"layer '{layer.layer_name}' ({layer.layer_type})"
    check_shape(where, "a parameter blob", shape)
    check_fits(where, f"its parameter blob of shape {[int(d) for d in shape]}", shape_bytes(shape))
    blob = torch.empty(tuple(int(d) for d in shape))
    try:
        fill_(blob, filler_param)
    except PrunekitError as err:
        raise layer_error(layer, str(err)) from None
    return torch.nn.Parameter(blob)


def constant_filler(template, value: float):
    """A FillerParameter 'constant' with ``value``, of the same message class as ``template``.

    Used where Caffe substitutes its own default filler (PReLU 0.25, Scale 1) when none is given.
    """
    filler = type(template)()
    filler.type = "constant"
    filler.value = value
    return filler


def single_or_tuple(outputs: Sequence[torch.Tensor]):
    """The CaffeLayer return convention: one tensor for one top, a tuple for several."""
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def broadcast_shape(num_axes: int, axis: int, param_shape: Sequence[int]) -> tuple[int, ...]:
    """Shape that broadcasts a blob covering axes [axis, axis+len) over a ``num_axes`` tensor."""
    tail = num_axes - axis - len(param_shape)
    return (1,) * axis + tuple(param_shape) + (1,) * tail


def check_label_range(layer, target: torch.Tensor, num_classes: int) -> None:
    """Every (non-ignored) label must name one of the ``num_classes`` classes.

    Caffe does not check (its GPU kernels read out of bounds, its CPU code hits a debug-only
    DCHECK); torch's gather fails with an index error, on a GPU with a fatal device assert. So
    the labels are checked here: one host sync per forward of a loss or Accuracy layer, which
    the solver's per-iteration loss read makes anyway."""
    if target.is_meta:  # shape inference (net/shapes.py) runs layers on meta tensors: no values
        return
    bad = (target < 0) | (target >= num_classes)
    if bool(bad.any()):
        value = int(target[bad][0])
        raise layer_error(layer, f"label {value} is outside the {num_classes} classes "
                                 f"0..{num_classes - 1} of its first bottom (check the labels of "
                                 "the data source, or set ignore_label)")
