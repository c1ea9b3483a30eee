"""Window geometry shared by Conv, ConvTranspose and pooling: ONNX pads (begin…, end…,
``auto_pad``) to Caffe's symmetric pad, and the Slice layers that crop the difference."""

from __future__ import annotations

import math


def explicit_pads(b, attrs: dict, spatial: tuple[int, ...], kernel: tuple[int, ...],
                  strides: tuple[int, ...], dilations: tuple[int, ...]) -> tuple[list, list]:
    """(begin pads, end pads) per spatial axis, resolving ``auto_pad`` as ONNX defines it."""
    n = len(spatial)
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", ""):
        pads = list(attrs.get("pads", [0] * (2 * n)))
        return pads[:n], pads[n:]
    if auto == "VALID":
        return [0] * n, [0] * n
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise b.error(f"auto_pad '{auto}' is not an ONNX value")
    begin, end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin, end


def symmetric_pad(b, begin: list[int], end: list[int], strides, wanted,
                  caffe_count) -> tuple[list[int], list[int]]:
    """(Caffe pad per axis, outputs to drop at the start per axis) for ONNX pads begin/end.

    Caffe pads both sides alike. With pad P >= begin and (P − begin) a whole number of strides,
    ONNX's windows are a contiguous run of Caffe's, starting (P − begin) / stride windows in,
    as long as Caffe computes ``wanted`` windows from there (``caffe_count(axis, P)`` is its
    window count); the smallest such P is taken (P = begin: nothing to drop).
    """
    pad, skip = [], []
    for axis, (first, last, s) in enumerate(zip(begin, end, strides)):
        for p in range(first, max(first, last) + s + 1, s):
            drop = (p - first) // s
            if drop + wanted[axis] <= caffe_count(axis, p):
                pad.append(p)
                skip.append(drop)
                break
        else:
            raise b.error(f"pads begin {begin} / end {end} with strides {list(strides)}: no "
                          "symmetric Caffe padding computes the same windows")
    return pad, skip


def crop_spatial(b, blob: str, skip: list[int], wanted: tuple[int, ...], have: tuple[int, ...],
                 output: str) -> None:
    """Make ONNX tensor ``output`` the window [skip, skip + wanted) of ``blob``'s spatial axes
    (shape ``have``, spatial axes from 2) with Slice layers; the cut parts go to a Silence."""
    current = blob
    for i, (start, size, full) in enumerate(zip(skip, wanted, have[2:])):
        if start == 0 and size == full:
            continue
        if start + size > full:
            raise b.error(f"Caffe's output ({full} on spatial axis {i}) is smaller than "
                          f"ONNX's ({size} from offset {start})")
        points = [p for p in (start, start + size) if 0 < p < full]
        lp = b.layer("Slice", [current], suffix=f"_crop{i}", num_tops=len(points) + 1)
        lp.slice_param.axis = 2 + i
        lp.slice_param.slice_point.extend(points)
        keep = 1 if start > 0 else 0
        silence = [t for k, t in enumerate(lp.top) if k != keep]
        b.layer("Silence", silence, suffix=f"_crop{i}_silence", num_tops=0)
        current = lp.top[keep]
    b.alias(output, current)
