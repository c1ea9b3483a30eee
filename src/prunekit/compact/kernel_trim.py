"""Shrink a 2-D conv kernel whose outer rows or columns are zero in every filter and channel.

Output y of a conv reads input row ``q = y·s − p + d·i`` with tap i ∈ [0, k). Dropping ``a``
leading and ``b`` trailing all-zero taps leaves taps i' = i − a, which must read the same rows.
Caffe's pad is the same on both sides, so the pad alone can do this only when the drop is
symmetric (a 5-wide kernel with pad 2 and zero outer columns becomes 3 wide with pad 1). Anything
else — a learnt 5×5 → 5×2 at pad 0, a one-sided drop — is exact when the conv reads a **crop** of
its input: rows [r0, r0 + L) with r0 = max(0, d·a − p) and pad p' = max(0, p − d·a), L chosen so
the output keeps its size and every real row a kept tap reads is inside the crop (rows a kept tap
reads in the padding stay padding). ``rewrite_prototxt`` writes the crop as a ``Slice`` layer along
that axis (its unused pieces go to a ``Silence``). A trim that even a crop cannot express (the far
side would need more padding than the near side) drops fewer taps, and zero rows inside the
kernel stay: :func:`trim_kernel` says which and why.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class AxisTrim:
    """One axis: taps dropped at the start and end, the new pad, and the input crop
    (start, length) in input rows, or None when the whole input is read."""

    lead: int
    trail: int
    pad: int
    crop: tuple[int, int] | None = None


@dataclass(frozen=True)
class Trim:
    """Taps kept per axis (start, stop), the new pad per axis, the input crop per axis
    ((start, length) or None) and notes for the report."""

    keep: tuple[tuple[int, int], tuple[int, int]]
    pad: tuple[int, int]
    notes: tuple[str, ...]
    crop: tuple[tuple[int, int] | None, tuple[int, int] | None] = (None, None)

    def changed(self, kernel: tuple[int, ...]) -> bool:
        return any(stop - start != k for (start, stop), k in zip(self.keep, kernel))


def _zero_edges(zero: list[bool]) -> tuple[int, int]:
    lead = next((i for i, z in enumerate(zero) if not z), len(zero))
    trail = next((i for i, z in enumerate(reversed(zero)) if not z), len(zero))
    return lead, trail


def _out_size(size: int, k: int, stride: int, pad: int, dilation: int) -> int:
    """Caffe's conv output length; ≤ 0 when the kernel does not fit."""
    span = size + 2 * pad - dilation * (k - 1) - 1
    return span // stride + 1 if span >= 0 else 0


def _fit(a: int, b: int, k: int, size: int, stride: int, pad: int,
         dilation: int) -> AxisTrim | None:
    """The pad and crop that make taps [a, k − b) compute exactly the full conv, or None."""
    out = _out_size(size, k, stride, pad, dilation)
    k2 = k - a - b
    first = dilation * a - pad                             # first input row a kept tap reads
    last = (out - 1) * stride + first + dilation * (k2 - 1)  # and the last one
    start = max(first, 0)
    new_pad = start - first
    needed = min(last, size - 1) - start + 1              # real rows that must be in the crop
    for length in range(size - start, max(needed, 1) - 1, -1):
        if (_out_size(length, k2, stride, new_pad, dilation) == out
                and last - start <= length - 1 + new_pad):
            crop = None if (start, length) == (0, size) else (start, length)
            return AxisTrim(a, b, new_pad, crop)
    return None


def axis_trim(zero: list[bool], size: int, stride: int, pad: int,
              dilation: int) -> AxisTrim:
    """The trim of one axis that drops the most outer zero taps (``zero[i]``: tap i is zero in
    every filter and channel); among equals, one without a crop."""
    k = len(zero)
    lead, trail = _zero_edges(zero)
    best = AxisTrim(0, 0, pad)
    if lead == k:
        return best
    for a in range(lead + 1):
        for b in range(trail + 1):
            fit = _fit(a, b, k, size, stride, pad, dilation)
            if fit is None:
                continue
            if (a + b, fit.crop is None) > (best.lead + best.trail, best.crop is None):
                best = fit
    return best


def trim_kernel(weight: torch.Tensor, stride: tuple[int, ...], pad: tuple[int, ...],
                dilation: tuple[int, ...], spatial: tuple[int, ...]) -> Trim | None:
    """How to trim the kernel of a 2-D conv weight [N, C/g, kh, kw] on an input of ``spatial``
    (H, W); see the module docstring. None for 1-D and 3-D convs (left alone)."""
    kernel = tuple(int(k) for k in weight.shape[2:])
    if len(kernel) != 2:
        return None
    nonzero = weight.detach().abs().sum((0, 1)) > 0            # [kh, kw]
    trims, notes = [], []
    for axis, what in ((0, "rows"), (1, "columns")):
        zero = (~nonzero.any(1 - axis)).tolist()
        trim = axis_trim(zero, spatial[axis], stride[axis], pad[axis], dilation[axis])
        trims.append(trim)
        notes += _why_taps_stay(zero, trim, what, pad[axis])
    keep = tuple((t.lead, k - t.trail) for t, k in zip(trims, kernel))
    return Trim(keep, (trims[0].pad, trims[1].pad), tuple(notes),
                (trims[0].crop, trims[1].crop))


def _why_taps_stay(zero: list[bool], trim: AxisTrim, what: str, pad: int) -> list[str]:
    k = len(zero)
    lead, trail = _zero_edges(zero)
    if lead == k:
        return []
    edge = [i for i in range(trim.lead, k - trim.trail)
            if zero[i] and not (lead <= i < k - trail)]
    inner = [i for i in range(k) if zero[i] and lead <= i < k - trail]
    notes = []
    if edge:
        notes.append(f"zero kernel {what} {edge} stay: without them the far side would need "
                     f"more padding than the near side (pad {pad}), which no crop can give")
    if inner:
        notes.append(f"zero kernel {what} {inner} stay: inside the kernel")
    return notes
