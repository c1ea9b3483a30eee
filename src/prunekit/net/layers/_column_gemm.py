"""The arithmetic of a column convolution: a reduced im2col of the kept columns and one GEMM.

Caffe computes a convolution as ``W · im2col(x)`` with W of shape (num_output, C/g·kh·kw) per
group. A column-pruned W has whole zero columns (one local input channel c at one kernel tap
(i, j), column index ``c·kh·kw + i·kw + j``); skipping them leaves ``W[:, kept] ·
im2col(x)[kept, :]``. The reduced im2col is gathered *tap by tap*: the channels kept at tap
(i, j) are one ``index_select`` of whole channel planes of the padded input, then the tap's
window (shifted by (i·dh, j·dw), subsampled by the stride) of those planes is copied into the
buffer (``cat``). Plane copies are several times faster on a CPU than gathering single channels
out of NHWC pixels, so an NHWC input is first transposed to channel-major (C, N, H, W). The kept
columns are computed in tap-major order; :class:`ColumnPlan` holds that order and the weight
permutation that matches it.

Two paths, chosen by the input's memory format, each ending in one GEMM per group:

* channels_last (NHWC, what prunekit recommends on CPU): buffer (G, n_kept, N·OH·OW); the
  product ``buffer^T · W^T`` is (N·OH·OW, num_output) — already NHWC.
* contiguous NCHW: buffer (N, G, n_kept, OH·OW); ``W · buffer`` is (N, num_output, OH·OW) —
  already NCHW.

Inference (no gradient needed, not tracing) of a big layer (whole buffer over 48 MiB) takes
neither path: it gathers and multiplies cache-sized bands of the reduced im2col
(prunekit.net.layers._column_bands), faster on a CPU than writing the whole buffer out. Training and export use
the two paths below.

Forward and backward are written out (:class:`ColumnConvFunction`): autograd through the
slices would allocate one zero copy of the padded input per tap. While tracing for
TorchScript / ONNX the forward runs as plain torch ops: Pad, Slice, Gather,
Concat, MatMul, Transpose in ONNX. Device-agnostic: the same code runs on CUDA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from prunekit.net.layers._column_bands import column_conv_bands, use_bands


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
    #: flat gather indices of the NCHW group-1 path, by padded input shape (see _flat_index)
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


def _tap_slices(plan: ColumnPlan, out_hw) -> list[tuple[slice, slice]]:
    """(rows, columns) of the padded input that tap (i, j) reads, per tap of the plan."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, plan.stride, plan.dilation
    return [(slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
             slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)) for i, j, _ in plan.taps]


def _working(x: torch.Tensor, plan: ColumnPlan, nhwc: bool) -> torch.Tensor:
    """The padded input with whole channel planes contiguous: (N, C, Hp, Wp) for an NCHW input,
    channel-major (C, N, Hp, Wp) for an NHWC one (one transposing copy, so that gathering a
    channel is a plane copy, not a strided element gather)."""
    ph, pw = plan.pad
    if nhwc:
        n, c, h, w = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(n * h * w, c)       # a view: x is NHWC
        x = torch.empty(c, n * h * w, dtype=x.dtype, device=x.device)
        x.copy_(pixels.t())     # 2-D transposed copy: ATen blocks it (4-D permutes are slow)
        x = x.view(c, n, h, w)
    return F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x


def _flat_index(plan: ColumnPlan, padded: tuple[int, int, int], out_hw) -> torch.Tensor:
    """NCHW, group 1: the offset of every reduced-im2col entry (K, OH, OW) in one flattened
    padded image (C, Hp, Wp), columns in the tap-major order of the per-tap gather, so the whole
    gather is one ``index_select`` instead of one per tap plus a concat (about 2x faster on
    LeNet-5's conv2 at batch 64, where the per-tap copies dominate). Cached per input shape."""
    index = plan.cache.get(padded)
    if index is not None:
        return index
    _, hp, wp = padded
    (oh, ow), (sh, sw), (dh, dw) = out_hw, plan.stride, plan.dilation
    device = plan.order.device
    parts = []
    for i, j, chans in plan.taps:
        rows = torch.arange(oh, device=device) * sh + i * dh
        cols = torch.arange(ow, device=device) * sw + j * dw
        parts.append(chans[:, None, None] * (hp * wp) + rows[None, :, None] * wp
                     + cols[None, None, :])
    index = torch.cat(parts).reshape(-1)
    plan.cache[padded] = index
    return index


def gather_columns(plan: ColumnPlan, x: torch.Tensor, nhwc: bool) -> torch.Tensor:
    """The reduced im2col of (N, C, H, W) ``x`` (any memory format; ``nhwc`` says which path):
    (N, G, n_kept, OH, OW) for the NCHW path, (G, n_kept, N, OH, OW) for the NHWC path, kept
    columns in tap-major order. Per tap: one gather of whole channel planes of the padded input
    (``index_select`` on its channel dim), then the tap's shifted, strided window of them; the
    NCHW group-1 path does all taps in one gather of precomputed offsets."""
    out_hw = output_size(plan, x.shape[2], x.shape[3])
    xw = _working(x, plan, nhwc)
    cd = 0 if nhwc else 1
    g = plan.group
    if not nhwc and g == 1:
        xw = xw.contiguous()
        index = _flat_index(plan, tuple(xw.shape[1:]), out_hw)
        flat = xw.reshape(xw.shape[0], -1).index_select(1, index)
        return flat.view(xw.shape[0], 1, -1, *out_hw)
    parts = []
    for (rows, cols), (_, _, chans) in zip(_tap_slices(plan, out_hw), plan.taps):
        planes = xw.index_select(cd, chans)[:, :, rows, cols]
        parts.append(planes.unflatten(cd, (g, -1)))
    return torch.cat(parts, cd + 1) if len(parts) > 1 else parts[0]


def _gemm(plan: ColumnPlan, cols: torch.Tensor, weight: torch.Tensor, bias, nhwc: bool):
    """Output (N, O, OH, OW) from the gathered columns and the tap-ordered weight (O, n_kept):
    channels_last memory for the NHWC path, contiguous otherwise."""
    g = plan.group
    wg = weight.unflatten(0, (g, -1))                                   # (G, O/G, k)
    if nhwc:
        _, k, n, oh, ow = cols.shape
        flat = cols.reshape(g, k, n * oh * ow)
        if g == 1:
            out = (torch.addmm(bias, flat[0].t(), weight.t()) if bias is not None
                   else torch.mm(flat[0].t(), weight.t()))              # (M, O)
        else:
            out = torch.bmm(flat.transpose(1, 2), wg.transpose(1, 2))  # (G, M, O/G)
            out = out.transpose(0, 1).reshape(n * oh * ow, -1)
            if bias is not None:
                out = out + bias
        return out.view(n, oh, ow, -1).permute(0, 3, 1, 2)
    n, _, k, oh, ow = cols.shape
    out = torch.matmul(wg, cols.reshape(n, g, k, oh * ow))             # (N, G, O/G, L)
    out = out.reshape(n, -1, oh, ow)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def _is_nhwc(x: torch.Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def column_conv_plain(plan: ColumnPlan, x: torch.Tensor, weight: torch.Tensor, bias):
    """Forward with plain torch ops (what tracing and ONNX export see; autograd works too)."""
    nhwc = _is_nhwc(x)
    return _gemm(plan, gather_columns(plan, x, nhwc), weight[:, plan.order], bias, nhwc)


class ColumnConvFunction(torch.autograd.Function):
    """Forward as :func:`column_conv_plain`; backward scatters the column gradient back tap by
    tap with ``index_add_`` into one padded input gradient (autograd would make one per tap)."""

    @staticmethod
    def forward(ctx, x, weight, bias, plan: ColumnPlan):
        nhwc = _is_nhwc(x)
        cols = gather_columns(plan, x, nhwc)
        w = weight[:, plan.order]
        ctx.plan, ctx.nhwc, ctx.in_shape = plan, nhwc, tuple(x.shape)
        ctx.has_bias = bias is not None
        ctx.save_for_backward(cols, w)
        return _gemm(plan, cols, w, bias, nhwc)

    @staticmethod
    def backward(ctx, grad_out):
        cols, w = ctx.saved_tensors
        plan, nhwc, g = ctx.plan, ctx.nhwc, ctx.plan.group
        wg = w.unflatten(0, (g, -1))                                   # (G, O/G, k)
        if nhwc:
            _, k, n, oh, ow = cols.shape
            gy = grad_out.permute(0, 2, 3, 1).reshape(n * oh * ow, g, -1).transpose(0, 1)
            cf = cols.reshape(g, k, n * oh * ow)                       # gy: (G, M, O/G)
            grad_w = torch.bmm(gy.transpose(1, 2), cf.transpose(1, 2)).reshape(w.shape)
            grad_cols = torch.bmm(wg.transpose(1, 2), gy.transpose(1, 2)).view(cols.shape)
            grad_b = gy.sum(1).reshape(-1) if ctx.has_bias else None
        else:
            n, _, k, oh, ow = cols.shape
            gy = grad_out.reshape(n, g, -1, oh * ow)                   # (N, G, O/G, L)
            cf = cols.reshape(n, g, k, oh * ow)
            grad_w = torch.matmul(gy, cf.transpose(2, 3)).sum(0).reshape(w.shape)
            grad_cols = torch.matmul(wg.transpose(1, 2), gy).view(cols.shape)
            grad_b = grad_out.sum((0, 2, 3)) if ctx.has_bias else None
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = _scatter_columns(plan, grad_cols, ctx.in_shape, nhwc)
        grad_weight = torch.empty_like(grad_w)
        grad_weight[:, plan.order] = grad_w
        return grad_x, grad_weight, grad_b, None


def _scatter_columns(plan: ColumnPlan, grad_cols: torch.Tensor, in_shape, nhwc: bool):
    """The adjoint of :func:`gather_columns`: add each column's gradient to the input
    position it was read from; the padding is cropped off at the end. Returns (N, C, H, W)
    (channels_last memory for the NHWC path)."""
    n, c, h, w = in_shape
    ph, pw = plan.pad
    cd = 0 if nhwc else 1
    shape = [c, n, h + 2 * ph, w + 2 * pw] if nhwc else [n, c, h + 2 * ph, w + 2 * pw]
    gxw = grad_cols.new_zeros(shape)
    out_hw = (grad_cols.shape[3], grad_cols.shape[4])
    start = 0
    for (rows, cols), (_, _, chans) in zip(_tap_slices(plan, out_hw), plan.taps):
        width = chans.numel() // plan.group
        part = grad_cols.narrow(cd + 1, start, width).flatten(cd, cd + 1)
        gxw[:, :, rows, cols].index_add_(cd, chans, part)
        start += width
    gx = gxw[:, :, ph:ph + h, pw:pw + w]
    return gx.permute(1, 0, 2, 3) if nhwc else gx


def column_conv(plan: ColumnPlan, x: torch.Tensor, weight: torch.Tensor, bias):
    """(N, C, H, W) -> (N, O, OH, OW): the column convolution, in the input's memory format."""
    plan = plan.to(x.device)
    tracing = torch.jit.is_tracing() or torch.jit.is_scripting()
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))
    if tracing:
        return column_conv_plain(plan, x, weight, bias)
    if not needs_grad and use_bands(plan, x):   # big inference layers: cache-sized bands
        return column_conv_bands(plan, x, weight[:, plan.order], bias, _is_nhwc(x))
    return ColumnConvFunction.apply(x, weight, bias, plan)
