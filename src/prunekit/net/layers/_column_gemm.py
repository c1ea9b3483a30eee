"""The arithmetic of a column convolution: a reduced im2col of the kept columns and one GEMM.

Caffe computes a convolution as ``W · im2col(x)`` with W of shape (num_output, C/g·kh·kw) per
group. A column-pruned W has whole zero columns (one local input channel c at one kernel tap
(i, j), column index ``c·kh·kw + i·kw + j``); skipping them leaves ``W[:, kept] ·
im2col(x)[kept, :]``. The reduced im2col is gathered *tap by tap*: for tap (i, j) the input
shifted by (i·dh, j·dw) and subsampled by the stride is a view of the padded input, and the
channels kept at that tap are one ``index_select`` of it. The kept columns are therefore
computed in tap-major order; :class:`ColumnPlan` holds that order and the weight permutation
that matches it.

Two layouts, chosen by the input's memory format, so neither needs a transpose:

* channels_last (NHWC, what prunekit recommends on CPU): the gathered buffer is (N·OH·OW,
  n_kept) and the product ``buffer · W^T`` is (N·OH·OW, num_output) — already NHWC.
* contiguous NCHW: the buffer is (N, n_kept, OH·OW) and ``W · buffer`` is (N, num_output,
  OH·OW) — already NCHW.

Forward and backward are written out (:class:`ColumnConvFunction`): autograd through the
slices would allocate one zero copy of the padded input per tap. With no gradient needed (or
while tracing for TorchScript / ONNX) the forward runs as plain torch ops: Pad, Slice, Gather,
Concat, MatMul, Transpose in ONNX. Device-agnostic: the same code runs on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class ColumnPlan:
    """How to gather the kept columns of one layer (shared by every group).

    ``taps``: (i, j, local channels kept at tap (i, j), int64) in tap-major order, taps without
    a kept channel left out. ``order``: int64 positions into the sorted kept-column list, so
    ``weight[:, order]`` is the weight in the gather's column order.
    """

    taps: tuple[tuple[int, int, torch.Tensor], ...]
    order: torch.Tensor
    group: int
    channels_per_group: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    #: Flat gather indices by (padded input C, H, W, layout) for group 1 (:func:`_flat_index`).
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def to(self, device: torch.device) -> "ColumnPlan":
        """The plan with its index tensors on ``device`` (the input's)."""
        if self.order.device == device:
            return self
        taps = tuple((i, j, ch.to(device)) for i, j, ch in self.taps)
        return ColumnPlan(taps, self.order.to(device), self.group, self.channels_per_group,
                          self.kernel, self.stride, self.pad, self.dilation)


def make_plan(kept: torch.Tensor, channels_per_group: int, group: int, kernel, stride, pad,
              dilation) -> ColumnPlan:
    """Plan for sorted unique kept columns ``kept`` (int64, Caffe's per-group column indices)."""
    taps_per_channel = kernel[0] * kernel[1]
    tap = kept % taps_per_channel
    channel = kept // taps_per_channel
    order = torch.argsort(tap * channels_per_group + channel)
    taps = []
    for t in torch.unique(tap).tolist():
        chans = channel[tap == t]
        if group > 1:  # the same local channels in every group, group-major
            chans = (torch.arange(group)[:, None] * channels_per_group + chans[None, :])
            chans = chans.reshape(-1)
        taps.append((t // kernel[1], t % kernel[1], chans.contiguous()))
    return ColumnPlan(tuple(taps), order, group, channels_per_group, tuple(kernel),
                      tuple(stride), tuple(pad), tuple(dilation))


def output_size(plan: ColumnPlan, height: int, width: int) -> tuple[int, int]:
    """Caffe's (in + 2p − d(k − 1) − 1) / s + 1 per axis."""
    return tuple((n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in zip(
        (height, width), plan.pad, plan.dilation, plan.kernel, plan.stride))


def _tap_views(plan: ColumnPlan, xp: torch.Tensor, out_hw, channel_dim: int):
    """(view of the padded input for each tap, that tap's channels), spatial dims at 2, 3 (NCHW)
    or 1, 2 (NHWC)."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, plan.stride, plan.dilation
    h_dim = 2 if channel_dim == 1 else 1
    for i, j, chans in plan.taps:
        v = xp.narrow(h_dim, i * dh, sh * (oh - 1) + 1).narrow(h_dim + 1, j * dw, sw * (ow - 1) + 1)
        if sh > 1 or sw > 1:
            index = [slice(None)] * 4
            index[h_dim], index[h_dim + 1] = slice(None, None, sh), slice(None, None, sw)
            v = v[tuple(index)]
        yield v, chans


def _pad(x: torch.Tensor, plan: ColumnPlan, nhwc: bool) -> torch.Tensor:
    ph, pw = plan.pad
    if not (ph or pw):
        return x
    return F.pad(x, (0, 0, pw, pw, ph, ph) if nhwc else (pw, pw, ph, ph))


def _flat_index(plan: ColumnPlan, padded: tuple[int, int, int], out_hw, nhwc: bool,
                device: torch.device) -> torch.Tensor:
    """For group 1: the offset of every reduced-im2col entry in one flattened padded image, in
    the order :func:`gather_columns` returns them ((OH, OW, kept) NHWC, (kept, OH, OW) NCHW;
    kept columns tap-major), so the whole gather is one ``index_select``. Cached per shape."""
    key = (*padded, nhwc)
    index = plan.cache.get(key)
    if index is not None:
        return index
    c, hp, wp = padded
    (oh, ow), (sh, sw), (dh, dw) = out_hw, plan.stride, plan.dilation
    ti = torch.cat([torch.full_like(ch, i) for i, _, ch in plan.taps]).cpu()
    tj = torch.cat([torch.full_like(ch, j) for _, j, ch in plan.taps]).cpu()
    tc = torch.cat([ch for _, _, ch in plan.taps]).cpu()
    rows = torch.arange(oh)[:, None] * sh + ti[None, :] * dh              # (OH, K)
    cols = torch.arange(ow)[:, None] * sw + tj[None, :] * dw              # (OW, K)
    if nhwc:
        index = (rows[:, None, :] * wp + cols[None, :, :]) * c + tc        # (OH, OW, K)
    else:
        index = (tc[:, None, None] * (hp * wp) + rows.t()[:, :, None] * wp
                 + cols.t()[:, None, :])                                   # (K, OH, OW)
    index = index.reshape(-1).to(device)
    plan.cache[key] = index
    return index


def gather_columns(plan: ColumnPlan, x: torch.Tensor, nhwc: bool) -> torch.Tensor:
    """The reduced im2col: NHWC (N, OH, OW, G·n_kept) or NCHW (N, G·n_kept, OH, OW), columns in
    group-major, then tap-major order. ``x`` is (N, H, W, C) when ``nhwc`` else (N, C, H, W).
    Group 1 gathers with one ``index_select`` on the flattened padded input (one kernel instead
    of one per tap plus a concat: ~3x faster on LeNet-5's conv2 at batch 64)."""
    h, w = (x.shape[1], x.shape[2]) if nhwc else (x.shape[2], x.shape[3])
    out_hw = output_size(plan, h, w)
    xp = _pad(x, plan, nhwc)
    if plan.group == 1:
        padded = (xp.shape[3], xp.shape[1], xp.shape[2]) if nhwc else tuple(xp.shape[1:])
        index = _flat_index(plan, padded, out_hw, nhwc, x.device)
        flat = xp.reshape(xp.shape[0], -1).index_select(1, index)
        k = index.numel() // (out_hw[0] * out_hw[1])
        return flat.view(xp.shape[0], *out_hw, k) if nhwc else \
            flat.view(xp.shape[0], k, *out_hw)
    dim = 3 if nhwc else 1
    parts = [v.index_select(dim, chans) for v, chans in _tap_views(plan, xp, out_hw, dim)]
    if plan.group > 1:  # each tap's part is [group][channel]: regroup to [group][tap][channel]
        parts = [p.unflatten(dim, (plan.group, -1)) for p in parts]
        return torch.cat(parts, dim + 1).flatten(dim, dim + 1)
    return torch.cat(parts, dim) if len(parts) > 1 else parts[0]


def _gemm(plan: ColumnPlan, cols: torch.Tensor, weight: torch.Tensor, bias, nhwc: bool):
    """Output (N, O, OH, OW) from the gathered columns and the tap-ordered weight (O, n_kept):
    channels_last memory when ``nhwc``, contiguous otherwise."""
    g = plan.group
    if nhwc:
        n, oh, ow, k = cols.shape
        flat = cols.reshape(n * oh * ow, k)
        if g == 1:
            out = (torch.addmm(bias, flat, weight.t()) if bias is not None
                   else torch.mm(flat, weight.t()))
        else:
            wg = weight.unflatten(0, (g, -1)).transpose(1, 2)           # (G, n_kept, O/G)
            out = torch.bmm(flat.unflatten(1, (g, -1)).transpose(0, 1), wg)  # (G, M, O/G)
            out = out.transpose(0, 1).reshape(n * oh * ow, -1)
            if bias is not None:
                out = out + bias
        return out.view(n, oh, ow, -1).permute(0, 3, 1, 2)
    n, k, oh, ow = cols.shape
    flat = cols.reshape(n, g, k // g, oh * ow)
    out = torch.matmul(weight.unflatten(0, (g, -1)), flat)             # (N, G, O/G, L)
    out = out.reshape(n, -1, oh, ow)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def column_conv_plain(plan: ColumnPlan, x: torch.Tensor, weight: torch.Tensor, bias):
    """Forward with plain torch ops (what tracing and ONNX export see; autograd works too)."""
    nhwc = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    xin = x.permute(0, 2, 3, 1) if nhwc else x
    cols = gather_columns(plan, xin, nhwc)
    return _gemm(plan, cols, weight[:, plan.order], bias, nhwc)


class ColumnConvFunction(torch.autograd.Function):
    """Forward as :func:`column_conv_plain`; backward scatters the column gradient back tap by
    tap with ``index_add_`` into one padded input gradient (autograd would make one per tap)."""

    @staticmethod
    def forward(ctx, x, weight, bias, plan: ColumnPlan):
        nhwc = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        xin = x.permute(0, 2, 3, 1) if nhwc else x
        cols = gather_columns(plan, xin, nhwc)
        w = weight[:, plan.order]
        ctx.plan, ctx.nhwc, ctx.in_shape = plan, nhwc, tuple(xin.shape)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(cols, w)
        return _gemm(plan, cols, w, bias, nhwc)

    @staticmethod
    def backward(ctx, grad_out):
        cols, w = ctx.saved_tensors
        plan, nhwc, g = ctx.plan, ctx.nhwc, ctx.plan.group
        if nhwc:
            gy = grad_out.permute(0, 2, 3, 1).reshape(-1, w.shape[0])      # (M, O)
            gyg = gy.unflatten(1, (g, -1)).transpose(0, 1)                 # (G, M, O/G)
            cf = cols.reshape(gy.shape[0], g, -1).transpose(0, 1)          # (G, M, k)
            wg = w.unflatten(0, (g, -1))                                   # (G, O/G, k)
            grad_w = torch.bmm(gyg.transpose(1, 2), cf).reshape(w.shape)
            grad_cols = torch.bmm(gyg, wg).transpose(0, 1).reshape(cols.shape)
            grad_b = gy.sum(0) if ctx.has_bias else None
        else:
            n, k, oh, ow = cols.shape
            gy = grad_out.reshape(n, g, -1, oh * ow)                       # (N, G, O/G, L)
            cf = cols.reshape(n, g, k // g, oh * ow)
            wg = w.unflatten(0, (g, -1))
            grad_w = torch.matmul(gy, cf.transpose(2, 3)).sum(0).reshape(w.shape)
            grad_cols = torch.matmul(wg.transpose(1, 2), gy).reshape(cols.shape)
            grad_b = grad_out.sum((0, 2, 3)) if ctx.has_bias else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _scatter_columns(plan, grad_cols, ctx.in_shape, nhwc)
            grad_x = grad_x.permute(0, 3, 1, 2) if nhwc else grad_x
        grad_weight = torch.empty_like(grad_w)
        grad_weight[:, plan.order] = grad_w
        return grad_x, grad_weight, grad_b, None


def _scatter_columns(plan: ColumnPlan, grad_cols: torch.Tensor, in_shape, nhwc: bool):
    """The adjoint of :func:`gather_columns`: add each column's gradient to the input
    position it was read from; the padding is cropped off at the end."""
    dim = 3 if nhwc else 1
    ph, pw = plan.pad
    shape = list(in_shape)
    h_dim = 1 if nhwc else 2
    shape[h_dim] += 2 * ph
    shape[h_dim + 1] += 2 * pw
    gxp = grad_cols.new_zeros(shape)
    out_hw = (grad_cols.shape[1], grad_cols.shape[2]) if nhwc else grad_cols.shape[2:]
    g = plan.group
    if g > 1:  # back to [tap][group][channel] parts
        per_group = grad_cols.unflatten(dim, (g, -1))
    start = 0
    for v, chans in _tap_views(plan, gxp, tuple(out_hw), dim):
        width = chans.numel() // g
        if g > 1:
            part = per_group.narrow(dim + 1, start, width).flatten(dim, dim + 1)
        else:
            part = grad_cols.narrow(dim, start, width)
        v.index_add_(dim, chans, part)
        start += width
    return gxp[:, ph:shape[1] - ph, pw:shape[2] - pw] if nhwc else \
        gxp[:, :, ph:shape[2] - ph, pw:shape[3] - pw]


def column_conv(plan: ColumnPlan, x: torch.Tensor, weight: torch.Tensor, bias):
    """(N, C, H, W) -> (N, O, OH, OW): the column convolution, in the input's memory format."""
    plan = plan.to(x.device)
    tracing = torch.jit.is_tracing() or torch.jit.is_scripting()
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))
    if tracing or not needs_grad:
        return column_conv_plain(plan, x, weight, bias)
    return ColumnConvFunction.apply(x, weight, bias, plan)
