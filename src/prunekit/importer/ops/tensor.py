"""Blob plumbing: Concat, Split / Slice (-> Slice; cut-off parts to a Silence), Flatten,
Reshape / Squeeze / Unsqueeze (-> Flatten or Reshape, the batch axis copied), ShuffleChannel
(ShuffleNet's Reshape/Transpose/Reshape, found by prunekit/importer/patterns.py) and an identity
Transpose. Any other Transpose has no Caffe layer."""

from __future__ import annotations

import numpy as np

from prunekit.importer.slicing import slice_range


def concat(node, b, attrs: dict) -> None:
    inputs = [t for t in node.input if t]
    if any(b.const(t) is not None for t in inputs):
        raise b.error("concatenating a constant: Caffe's Concat joins activations only")
    rank = len(b.shape(node.output[0]))
    lp = b.layer("Concat", [b.bottom(t) for t in inputs], outputs=[node.output[0]])
    axis = int(attrs["axis"]) % rank
    if axis != 1:
        lp.concat_param.axis = axis


def _slice_layer(b, x: str, axis: int, points: list[int], outputs: list[str | None]) -> None:
    """Caffe Slice of ``x`` at ``points`` on ``axis``; ``outputs`` names the ONNX tensor of
    each part (None: cut off), unread parts go to one Silence layer."""
    lp = b.layer("Slice", [b.bottom(x)], num_tops=len(outputs))
    lp.slice_param.axis = axis
    lp.slice_param.slice_point.extend(int(p) for p in points)
    unused = []
    for top, output in zip(lp.top, outputs):
        if output and (b.graph.consumers(output) or output in b.graph.outputs):
            b.alias(output, top)
        else:
            unused.append(top)
    if unused:
        b.layer("Silence", unused, suffix="_silence", num_tops=0)


def split(node, b, attrs: dict) -> None:
    shape = b.shape(node.input[0])
    axis = int(attrs.get("axis", 0)) % len(shape)
    sizes = [b.shape(o)[axis] for o in node.output]
    points = list(np.cumsum(sizes)[:-1])
    _slice_layer(b, node.input[0], axis, points, list(node.output))


def slice_(node, b, attrs: dict) -> None:
    """One ONNX Slice: a step-1 range on one axis (a chunk's parts come as SliceTiles)."""
    shape = b.shape(node.input[0])
    cut = slice_range(node, b.graph.constants, shape)
    if cut is None:
        raise b.error("only step-1 slices of one axis with constant bounds map to Caffe's Slice")
    axis, start, end = cut
    if start == 0 and end == shape[axis]:
        b.alias(node.output[0], b.bottom(node.input[0]))
        return
    points = [p for p in (start, end) if 0 < p < shape[axis]]
    outputs = ([None] if start > 0 else []) + [node.output[0]] + (
        [None] if end < shape[axis] else [])
    _slice_layer(b, node.input[0], axis, points, outputs)


def slice_tiles(node, b, attrs: dict) -> None:
    """Pseudo-op: ONNX Slices that tile one axis of one tensor (``x.chunk(2, 1)``)."""
    _slice_layer(b, node.input[0], int(attrs["axis"]), list(attrs["points"]), list(node.output))


def reshape(node, b, attrs: dict) -> None:
    """Flatten, Squeeze, Unsqueeze and Reshape by the inferred output shape."""
    x = node.input[0]
    shape, out = tuple(b.shape(x)), tuple(b.shape(node.output[0]))
    if shape == out:
        b.alias(node.output[0], b.bottom(x))
        return
    if len(out) == 2 and len(shape) > 2 and out[0] == shape[0]:
        b.layer("Flatten", [b.bottom(x)], outputs=[node.output[0]])
        return
    lp = b.layer("Reshape", [b.bottom(x)], outputs=[node.output[0]])
    dims = list(out)
    if out and shape and out[0] == shape[0]:
        dims[0] = 0  # copy the batch axis: the net runs at any batch size
    lp.reshape_param.shape.dim.extend(int(d) for d in dims)


def transpose(node, b, attrs: dict) -> None:
    perm = list(attrs.get("perm", []))
    if perm and perm == sorted(perm):
        b.alias(node.output[0], b.bottom(node.input[0]))
        return
    shape = b.shape(node.input[0])
    moved = [p for i, p in enumerate(perm) if p != i]
    if all(shape[p] == 1 for p in moved):  # only size-1 axes move: a reshape
        reshape(node, b, attrs)
        return
    raise b.error(f"Transpose perm {perm} of {list(shape)}: Caffe has no general transpose; "
                  "only the channel shuffle Reshape(N, g, C/g, ...) -> Transpose(0, 2, 1, ...) "
                  "-> Reshape(N, C, ...) maps (to ShuffleChannel)")


def shuffle_channel(node, b, attrs: dict) -> None:
    lp = b.layer("ShuffleChannel", [b.bottom(node.input[0])], outputs=[node.output[0]])
    lp.shuffle_channel_param.group = int(attrs["group"])


HANDLERS = {
    "Concat": concat, "Split": split, "Slice": slice_, "SliceTiles": slice_tiles,
    "Flatten": reshape, "Reshape": reshape, "Squeeze": reshape, "Unsqueeze": reshape,
    "Transpose": transpose, "ShuffleChannel": shuffle_channel,
}
