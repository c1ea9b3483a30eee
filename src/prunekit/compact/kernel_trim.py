"""Shrink a 2-D conv kernel whose outer rows or columns are zero in every filter and channel.

Output y of a conv reads input row ``y·s − p + d·i`` with tap i ∈ [0, k). Dropping ``a`` leading
and ``b`` trailing all-zero taps leaves taps i' = i − a, which read the same rows when the pad
becomes ``p' = p − d·a``; the output size ``⌊(H + 2p' − d(k' − 1) − 1) / s⌋ + 1`` must stay
what it was. Caffe's pad is the same on both sides, so at stride 1 only ``a = b`` works
(a 5-wide kernel with pad 2 and zero outer columns becomes 3 wide with pad 1), and nothing works
without padding (``p' < 0`` would crop, a wider output would misalign everything after). With a
stride > 1 the rounding leaves a little room for ``a ≠ b``. Zero rows inside the kernel cannot be
removed densely either. What cannot be trimmed stays, and :func:`trim_kernel` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Trim:
    """Taps kept per axis (start, stop), the new pad per axis and notes for the report."""

    keep: tuple[tuple[int, int], tuple[int, int]]
    pad: tuple[int, int]
    notes: tuple[str, ...]

    def changed(self, kernel: tuple[int, ...]) -> bool:
        return any(stop - start != k for (start, stop), k in zip(self.keep, kernel))


def _zero_edges(zero: list[bool]) -> tuple[int, int]:
    lead = next((i for i, z in enumerate(zero) if not z), len(zero))
    trail = next((i for i, z in enumerate(reversed(zero)) if not z), len(zero))
    return lead, trail


def axis_trim(zero: list[bool], size: int, stride: int, pad: int,
              dilation: int) -> tuple[int, int]:
    """(leading, trailing) taps to drop on one axis: the most that keep the output's size and
    alignment with a non-negative pad. ``zero[i]``: tap i is zero in every filter and channel."""
    k = len(zero)
    lead, trail = _zero_edges(zero)
    if lead == k:
        return 0, 0
    out = (size + 2 * pad - dilation * (k - 1) - 1) // stride
    best = (0, 0)
    for a in range(lead + 1):
        new_pad = pad - dilation * a
        if new_pad < 0:
            break
        for b in range(trail + 1):
            span = size + 2 * new_pad - dilation * (k - a - b - 1) - 1
            if span >= 0 and span // stride == out and a + b > sum(best):
                best = (a, b)
    return best


def trim_kernel(weight: torch.Tensor, stride: tuple[int, ...], pad: tuple[int, ...],
                dilation: tuple[int, ...], spatial: tuple[int, ...]) -> Trim | None:
    """How to trim the kernel of a 2-D conv weight [N, C/g, kh, kw] on an input of ``spatial``
    (H, W); see the module docstring. None for 1-D and 3-D convs (left alone)."""
    kernel = tuple(int(k) for k in weight.shape[2:])
    if len(kernel) != 2:
        return None
    nonzero = weight.detach().abs().sum((0, 1)) > 0            # [kh, kw]
    keep, new_pad, notes = [], [], []
    for axis, what in ((0, "rows"), (1, "columns")):
        zero = (~nonzero.any(1 - axis)).tolist()
        a, b = axis_trim(zero, spatial[axis], stride[axis], pad[axis], dilation[axis])
        keep.append((a, kernel[axis] - b))
        new_pad.append(pad[axis] - dilation[axis] * a)
        lead, trail = _zero_edges(zero)
        if lead == kernel[axis]:
            continue
        edge = [i for i in range(kernel[axis]) if zero[i] and (a <= i < kernel[axis] - b)
                and not (lead <= i < kernel[axis] - trail)]
        inner = [i for i in range(kernel[axis]) if zero[i] and lead <= i < kernel[axis] - trail]
        if edge:
            notes.append(f"zero kernel {what} {edge} stay: the pad ({pad[axis]}) is the same on "
                         "both sides, so removing them would change the output size or shift it")
        if inner:
            notes.append(f"zero kernel {what} {inner} stay: inside the kernel")
    return Trim((keep[0], keep[1]), (new_pad[0], new_pad[1]), tuple(notes))
