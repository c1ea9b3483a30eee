"""The fast inference forward of a column convolution: gather a band of the reduced im2col that
fits in cache, multiply it at once, repeat (prunekit.net.layers._column_gemm has the plan and the
autograd / export path).

Why: the reduced im2col of a big layer is larger than the layer's input (VGG-16 conv1_2 at batch
8 keeping a quarter of its columns: 144 rows × 400k pixels = 230 MB); writing it out whole and
reading it back for the GEMM made the gather cost more than the GEMM. Here the input is laid out
once channel-major and padded, (C, N, Hq, Wq) flattened, so that every kept column (channel c at
tap (i, j)) is *one contiguous run* of that buffer: at output grid position q (over the padded
grid N·Hq·Wq) it reads ``flat[c·R + shift(i, j) + q]``, R = N·Hq·Wq. A band of B grid positions
is then one ``index_select`` of rows of an overlapping strided view (row k = the B values
starting at column k's offset: a memcpy per row), B chosen so the band (kept columns × B floats)
stays in cache, and one GEMM writes the band's outputs. Grid positions past the output's edge
(y ≥ OH or x ≥ OW) are computed and cropped off: (Hq·Wq)/(OH·OW) more MACs (2% at 224², 30% at
14²). Stride s > 1: the padded input is split into its s×s phases (space to depth) so that
every tap is again a plain shift inside one phase plane; dilation is a larger shift.

Output in the input's memory format (NHWC in → NHWC out); the GEMM is oriented so the band is
written in that layout's order. Device-agnostic torch ops (index_select, as_strided, mm).
Units: none here; the benchmarks (benchmarks/column_speedup.py) time it in ms per batch.
"""

from __future__ import annotations

import math

import torch

#: Bytes of the gathered band (kept columns × band width × 4): about a core's L2 on the CPUs
#: this was tuned on (AMD EPYC, 1 MiB L2); the band width is at least MIN_BAND positions.
BAND_BYTES = 1 << 20
MIN_BAND = 512
#: Bytes of the whole reduced im2col above which the banded forward is used (use_bands).
FULL_BUFFER_BYTES = 48 << 20


def _grid(plan, height: int, width: int) -> tuple[int, int, int, int, int, int]:
    """(OH, OW, Hq, Wq, padded H rounded up to the stride, same for W)."""
    (ph, pw), (sh, sw), (dh, dw), (kh, kw) = plan.pad, plan.stride, plan.dilation, plan.kernel
    hp, wp = height + 2 * ph, width + 2 * pw
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    hq, wq = math.ceil(hp / sh), math.ceil(wp / sw)
    return oh, ow, hq, wq, hq * sh, wq * sw


def _offsets(plan, channels: int, hq: int, wq: int, r: int, device) -> tuple[torch.Tensor, int]:
    """Start offsets (G, n_kept) of every kept column's run in the flat working buffer, in the
    plan's tap-major column order, and the largest tap shift (the buffer's tail slack)."""
    (sh, sw), (dh, dw) = plan.stride, plan.dilation
    parts, most = [], 0
    for i, j, chans in plan.taps:
        a, b = (i * dh) % sh, (j * dw) % sw
        shift = ((i * dh) // sh) * wq + (j * dw) // sw
        most = max(most, shift)
        virtual = (chans.to(device) * sh + a) * sw + b
        parts.append((virtual * r + shift).view(plan.group, -1))
    del channels
    return torch.cat(parts, 1), most


def _working(plan, x: torch.Tensor, hq: int, wq: int, hs: int, ws: int, slack: int):
    """The padded input channel-major, phase-split for stride > 1, flattened, with ``slack``
    zeros at the end: (C·sh·sw, N, Hq, Wq) in one flat buffer."""
    n, c, h, w = x.shape
    (ph, pw), (sh, sw) = plan.pad, plan.stride
    r = n * hq * wq
    flat = x.new_empty(c * sh * sw * r + slack)
    flat[c * sh * sw * r:].zero_()
    if sh == 1 and sw == 1:
        view = flat[:c * r].view(c, n, hq, wq)
        view[:, :, :ph].zero_()
        view[:, :, ph + h:].zero_()
        view[:, :, ph:ph + h, :pw].zero_()
        view[:, :, ph:ph + h, pw + w:].zero_()
        view[:, :, ph:ph + h, pw:pw + w].copy_(_channel_major(x))
        return flat, r
    padded = x.new_zeros(n, c, hs, ws)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    view = flat[:c * sh * sw * r].view(c, sh, sw, n, hq, wq)
    view.copy_(padded.view(n, c, hq, sh, wq, sw).permute(1, 3, 5, 0, 2, 4))
    return flat, r


def _channel_major(x: torch.Tensor) -> torch.Tensor:
    """(C, N, H, W) of x: a view for NCHW memory; for NHWC one 2-D transposed copy (ATen blocks
    it; the 4-D permuting copy straight into the padded buffer is several times slower)."""
    n, c, h, w = x.shape
    if not (x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()):
        return x.permute(1, 0, 2, 3)
    out = x.new_empty(c, n * h * w)
    out.copy_(x.permute(0, 2, 3, 1).reshape(n * h * w, c).t())
    return out.view(c, n, h, w)


def use_bands(plan, x: torch.Tensor) -> bool:
    """Whether the banded forward is expected to beat writing the whole reduced im2col: when
    that buffer (n_kept · N · OH · OW floats) would exceed FULL_BUFFER_BYTES. Measured on a
    loaded 2-core AMD EPYC, one thread (docs/column_conv_speed.md): 1.3-1.7x faster than the
    whole buffer at 224² and 56², no faster at 28² and 14², where the band grid's cropped
    border costs 15-30% more MACs."""
    oh, ow = _grid(plan, x.shape[2], x.shape[3])[:2]
    n_kept = sum(chans.numel() for _, _, chans in plan.taps)
    return 4 * n_kept * x.shape[0] * oh * ow > FULL_BUFFER_BYTES


def _setup(plan, x: torch.Tensor):
    key = ("bands", tuple(x.shape), x.device)
    cached = plan.cache.get(key)
    if cached is None:
        oh, ow, hq, wq, hs, ws = _grid(plan, x.shape[2], x.shape[3])
        r = x.shape[0] * hq * wq
        offsets, most = _offsets(plan, x.shape[1], hq, wq, r, x.device)
        cached = plan.cache[key] = (oh, ow, hq, wq, hs, ws, r, offsets.reshape(-1), most)
    return cached


def band_rows(plan, n_kept: int, wq: int) -> int:
    """Grid rows per band: BAND_BYTES of gathered floats (at least MIN_BAND positions), whole
    rows so that the band's valid outputs are whole output rows."""
    return max(1, max(MIN_BAND, BAND_BYTES // (4 * n_kept * plan.group)) // wq)


def column_conv_bands(plan, x: torch.Tensor, weight: torch.Tensor, bias, nhwc: bool):
    """(N, C, H, W) -> (N, O, OH, OW) without autograd; ``weight`` (O, n_kept) in the plan's
    tap-major column order. NHWC output (channels_last memory) when ``nhwc``, else contiguous.
    Bands are whole rows of one image: the GEMM writes straight into the output's rows (the
    cropped border columns are dropped from the band, no copy of the whole output)."""
    oh, ow, hq, wq, hs, ws, r, offsets, most = _setup(plan, x)
    g, n, o = plan.group, x.shape[0], weight.shape[0]
    k = offsets.numel() // g
    nr = min(oh, band_rows(plan, k, wq))
    band = nr * wq
    flat, _ = _working(plan, x, hq, wq, hs, ws, most + band)
    rows = flat.as_strided((flat.numel() - band + 1, band), (1, 1))
    wg = weight.view(g, -1, k)
    res = x.new_empty((n, oh, ow, o) if nhwc else (n, o, oh, ow))
    for i in range(n):
        for y0 in range(0, oh, nr):
            m = min(nr, oh - y0)
            cols = rows.index_select(0, offsets + (i * hq * wq + y0 * wq))
            cols = cols.view(g, k, nr, wq)[:, :, :m, :ow]   # (G, k, m, OW)
            if nhwc:
                a = cols.permute(0, 2, 3, 1).reshape(g, m * ow, k)
                target = res[i, y0:y0 + m].view(m * ow, g, -1)
                if g == 1:
                    torch.mm(a[0], wg[0].t(), out=target.view(m * ow, -1))
                else:
                    target.copy_(torch.bmm(a, wg.transpose(1, 2)).transpose(0, 1))
            else:
                prod = torch.bmm(wg, cols.reshape(g, k, m * ow))            # (G, O/G, m·OW)
                res[i, :, y0:y0 + m].copy_(prod.view(o, m, ow))
    if bias is not None:
        res.add_(bias if nhwc else bias.view(-1, 1, 1))
    return res.permute(0, 3, 1, 2) if nhwc else res


