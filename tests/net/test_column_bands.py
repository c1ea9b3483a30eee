"""The banded inference forward of ColumnConvolution (src/prunekit/net/layers/_column_bands.py)
against torch's dense convolution with the same zeroed columns: every stride / pad / dilation /
group / kernel combination, both memory formats, bias or not, with bands so small that every
call spans many bands and ends in a short one."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from prunekit.net.layers import _column_bands
from prunekit.net.layers._column_gemm import column_conv, make_plan

COMBOS = list(itertools.product((1, 2), (0, 1, 2), (1, 2), (1, 2),
                                ((1, 1), (3, 3), (5, 5), (3, 5))))


@pytest.fixture
def tiny_bands(monkeypatch):
    monkeypatch.setattr(_column_bands, "BAND_BYTES", 4 * 40 * 13)
    monkeypatch.setattr(_column_bands, "MIN_BAND", 7)
    monkeypatch.setattr(_column_bands, "FULL_BUFFER_BYTES", 0)   # column_conv always bands


@pytest.mark.parametrize("stride,pad,dilation,group,kernel", COMBOS)
def test_bands_equal_dense_conv(tiny_bands, stride, pad, dilation, group, kernel):
    gen = torch.Generator().manual_seed(hash((stride, pad, dilation, group, kernel)) % 1000)
    n, c, o, h, w = 2, 4, 6, 11, 10
    kh, kw = kernel
    if h + 2 * pad < dilation * (kh - 1) + 1 or w + 2 * pad < dilation * (kw - 1) + 1:
        pytest.skip("kernel extent larger than the padded input")
    cg = c // group
    mask = torch.rand(cg * kh * kw, generator=gen) < 0.5
    mask[0] = True
    weight = torch.randn(o, cg, kh, kw, generator=gen)
    weight.view(o, -1)[:, ~mask] = 0
    kept = mask.nonzero().flatten()
    plan = make_plan(kept, cg, group, kernel, (stride, stride), (pad, pad), (dilation, dilation))
    bias = torch.randn(o, generator=gen)
    x = torch.randn(n, c, h, w, generator=gen)
    for b, nhwc in itertools.product((None, bias), (False, True)):
        ref = F.conv2d(x, weight, b, stride=stride, padding=pad, dilation=dilation, groups=group)
        xin = x.contiguous(memory_format=torch.channels_last) if nhwc else x
        with torch.no_grad():
            y = column_conv(plan, xin, weight.view(o, -1)[:, kept], b)
        fmt = torch.channels_last if nhwc else torch.contiguous_format
        assert y.is_contiguous(memory_format=fmt)
        assert (y - ref).abs().max() <= 1e-5 * ref.abs().max()


def test_small_layers_keep_the_whole_buffer_path():
    plan = make_plan(torch.arange(0, 576, 4), 64, 1, (3, 3), (1, 1), (1, 1), (1, 1))
    assert not _column_bands.use_bands(plan, torch.empty(8, 64, 28, 28))   # 14 MB buffer
    assert _column_bands.use_bands(plan, torch.empty(8, 64, 224, 224))     # 231 MB buffer
