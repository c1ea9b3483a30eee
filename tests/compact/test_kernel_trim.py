"""Kernel trimming: which outer zero taps can go with a symmetric pad, and that the trimmed conv
computes exactly what the full one did."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunekit.compact.kernel_trim import axis_trim, trim_kernel

T, F_ = True, False


@pytest.mark.parametrize("zero, size, stride, pad, dilation, expected", [
    ([T, F_, F_, F_, T], 28, 1, 2, 1, (1, 1)),     # 5 -> 3, pad 2 -> 1
    ([T, T, F_, T, T], 28, 1, 2, 1, (2, 2)),       # 5 -> 1, pad 0
    ([T, F_, F_, F_, F_], 28, 1, 2, 1, (0, 0)),    # one side only: the output would shift
    ([T, F_, F_, F_, T], 28, 1, 0, 1, (0, 0)),     # no pad to take from
    ([F_, F_, F_, F_, T], 12, 1, 0, 1, (0, 0)),    # a trailing tap alone widens the output
    ([T, F_, F_, F_, F_, F_, F_], 224, 2, 3, 1, (1, 0)),   # stride 2: rounding leaves room
    ([T, F_, T], 10, 1, 2, 2, (1, 1)),             # dilation 2: pad 2 -> 0
    ([T, T, T], 8, 1, 1, 1, (0, 0)),               # an all-zero kernel is left alone
])
def test_axis_trim(zero, size, stride, pad, dilation, expected) -> None:
    assert axis_trim(zero, size, stride, pad, dilation) == expected


@pytest.mark.parametrize("stride, pad, dilation, zero_rows, zero_cols", [
    ((1, 1), (2, 2), (1, 1), [0, 4], [0, 4]),
    ((2, 1), (2, 2), (1, 1), [4], [0, 4]),        # stride 2: a trailing row alone can go
    ((1, 2), (2, 1), (2, 1), [0, 2], []),
])
def test_trimmed_conv_equals_the_full_one(stride, pad, dilation, zero_rows, zero_cols) -> None:
    gen = torch.Generator().manual_seed(0)
    kh = 3 if dilation[0] == 2 else 5
    w = torch.randn(4, 3, kh, 5, generator=gen)
    w[:, :, zero_rows] = 0
    w[:, :, :, zero_cols] = 0
    x = torch.randn(2, 3, 13, 11, generator=gen)
    trim = trim_kernel(w, stride, pad, dilation, (13, 11))
    (r0, r1), (c0, c1) = trim.keep
    full = F.conv2d(x, w, stride=stride, padding=pad, dilation=dilation)
    small = F.conv2d(x, w[:, :, r0:r1, c0:c1], stride=stride, padding=trim.pad,
                     dilation=dilation)
    assert small.shape == full.shape
    torch.testing.assert_close(small, full)
    assert trim.changed((kh, 5))


def test_notes_say_why_zero_taps_stay() -> None:
    w = torch.randn(2, 2, 5, 5)
    w[:, :, 2] = 0             # an inner row
    w[:, :, :, 4] = 0          # a trailing column with pad 0
    trim = trim_kernel(w, (1, 1), (0, 0), (1, 1), (12, 12))
    assert not trim.changed((5, 5))
    assert trim.notes == (
        "zero kernel rows [2] stay: inside the kernel",
        "zero kernel columns [4] stay: the pad (0) is the same on both sides, so removing them "
        "would change the output size or shift it")
    assert trim_kernel(torch.randn(2, 2, 3), (1,), (1,), (1,), (8,)) is None
