"""Kernel trimming: which outer zero taps can go (with the pad, or with a crop of the input), and
that the trimmed conv on the cropped input computes exactly what the full one did."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from prunekit.compact.kernel_trim import AxisTrim, axis_trim, trim_kernel

T, F_ = True, False


@pytest.mark.parametrize("zero, size, stride, pad, dilation, expected", [
    ([T, F_, F_, F_, T], 28, 1, 2, 1, AxisTrim(1, 1, 1)),          # 5 -> 3, pad 2 -> 1
    ([T, T, F_, T, T], 28, 1, 2, 1, AxisTrim(2, 2, 0)),            # 5 -> 1, pad 0
    ([T, F_, F_, F_, F_], 28, 1, 2, 1, AxisTrim(0, 0, 2)),         # far side would need pad 2
    ([T, F_, F_, F_, T], 28, 1, 0, 1, AxisTrim(1, 1, 0, (1, 26))),  # pad 0: crop rows 1..26
    ([F_, F_, F_, F_, T], 12, 1, 0, 1, AxisTrim(0, 1, 0, (0, 11))),  # trailing tap: crop the end
    ([T, T, T, F_, F_], 12, 1, 0, 1, AxisTrim(3, 0, 0, (3, 9))),   # 5 -> 2 at pad 0 (LeNet conv2)
    ([T, F_, F_, F_, F_, F_, F_], 224, 2, 3, 1, AxisTrim(1, 0, 2)),  # stride 2: rounding, no crop
    ([T, F_, T], 10, 1, 2, 2, AxisTrim(1, 1, 0)),                  # dilation 2: pad 2 -> 0
    ([T, T, T], 8, 1, 1, 1, AxisTrim(0, 0, 1)),                    # all-zero kernel: left alone
])
def test_axis_trim(zero, size, stride, pad, dilation, expected) -> None:
    assert axis_trim(zero, size, stride, pad, dilation) == expected


def _crop(x: torch.Tensor, crop) -> torch.Tensor:
    for axis, c in zip((2, 3), crop):
        if c is not None:
            x = x.narrow(axis, c[0], c[1])
    return x


def _check_equal(w, x, stride, pad, dilation) -> object:
    trim = trim_kernel(w, stride, pad, dilation, tuple(x.shape[2:]))
    (r0, r1), (c0, c1) = trim.keep
    full = F.conv2d(x, w, stride=stride, padding=pad, dilation=dilation)
    small = F.conv2d(_crop(x, trim.crop), w[:, :, r0:r1, c0:c1], stride=stride,
                     padding=trim.pad, dilation=dilation)
    assert small.shape == full.shape
    torch.testing.assert_close(small, full)
    return trim


@pytest.mark.parametrize("stride, pad, dilation, zero_rows, zero_cols", [
    ((1, 1), (2, 2), (1, 1), [0, 4], [0, 4]),
    ((2, 1), (2, 2), (1, 1), [4], [0, 4]),        # stride 2: a trailing row alone can go
    ((1, 2), (2, 1), (2, 1), [0, 2], []),
    ((1, 1), (0, 0), (1, 1), [], [2, 3, 4]),      # 5x5 -> 5x2 at pad 0: a crop
    ((1, 1), (0, 0), (1, 1), [0, 1, 2], [0]),     # 5x5 -> 2x4 at pad 0
    ((1, 1), (1, 1), (1, 1), [0, 1, 4], []),      # 2 + 1 rows at pad 1: crop 1 row, pad 0
])
def test_trimmed_conv_equals_the_full_one(stride, pad, dilation, zero_rows, zero_cols) -> None:
    gen = torch.Generator().manual_seed(0)
    kh = 3 if dilation[0] == 2 else 5
    w = torch.randn(4, 3, kh, 5, generator=gen)
    w[:, :, zero_rows] = 0
    w[:, :, :, zero_cols] = 0
    x = torch.randn(2, 3, 13, 11, generator=gen)
    trim = _check_equal(w, x, stride, pad, dilation)
    assert trim.changed((kh, 5))


def test_every_edge_pattern_is_exact_or_left() -> None:
    """All zero-edge patterns of a 4-tap axis, pads 0-2, strides 1-3, dilations 1-2, odd and even
    inputs: the trim (whatever it chose) computes exactly the full conv."""
    gen = torch.Generator().manual_seed(1)
    for lead, trail, pad, stride, dil, size in itertools.product(
            range(3), range(3), range(3), (1, 2, 3), (1, 2), (9, 10)):
        if lead + trail >= 4:
            continue
        w = torch.randn(2, 2, 4, 1, generator=gen)
        w[:, :, :lead] = 0
        if trail:
            w[:, :, 4 - trail:] = 0
        x = torch.randn(1, 2, size, 3, generator=gen)
        if (size + 2 * pad - dil * 3 - 1) < 0:
            continue
        _check_equal(w, x, (stride, 1), (pad, 0), (dil, 1))


def test_notes_say_why_zero_taps_stay() -> None:
    w = torch.randn(2, 2, 5, 5)
    w[:, :, 2] = 0             # an inner row
    w[:, :, :, 0] = 0          # a leading column with pad 2: the far side would need pad 2
    trim = trim_kernel(w, (1, 1), (2, 2), (1, 1), (12, 12))
    assert not trim.changed((5, 5))
    assert trim.notes == (
        "zero kernel rows [2] stay: inside the kernel",
        "zero kernel columns [0] stay: without them the far side would need more padding than "
        "the near side (pad 2), which no crop can give")
    assert trim_kernel(torch.randn(2, 2, 3), (1,), (1,), (1,), (8,)) is None
