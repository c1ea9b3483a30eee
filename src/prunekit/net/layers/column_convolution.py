"""prunekit ``ColumnConvolution``: a 2-D Convolution that computes only its kept weight columns.

A prunekit extension of the Caffe schema (docs/formats.md). The layer reads Caffe's
``convolution_param`` as the dense Convolution it replaces (num_output, kernel, stride, pad,
dilation, group, bias_term, fillers) plus ``column_param.kept_column``: the columns of Caffe's
per-group weight matrix (num_output/g, C/g·kh·kw) that are kept, index ``c·kh·kw + i·kw + j``
for local input channel c and kernel tap (i, j), the same set in every group (column pruning
prunes a column across all filters), sorted ascending and unique. Its output equals the dense
Convolution's whose weight is zero on every other column.

Blobs: ``weight`` (num_output, n_kept) — row o is W[o, kept] of the dense weight matrix — and
``bias`` (num_output) with bias_term. An empty kept set is refused (the output would not depend
on the input; compact keeps such a layer in its dense, zero-weight form).

Channels: the input channels are consumed like a Convolution's (each kept column reads one
input channel), the outputs are one channel per filter. The channel traces
(prunekit.prune.dependency, prunekit.compact.trace) do not look inside the kept set: they pin the
input channels and start fresh output channels (a net that already holds column layers is
compact's output; pruning or compacting it again keeps their channels).

The arithmetic (reduced im2col + one GEMM, NHWC or NCHW) is in
prunekit.net.layers._column_gemm.
"""

from __future__ import annotations

import torch

from prunekit.net.layers._column_gemm import make_plan, column_conv
from prunekit.net.layers._common import check_num_bottoms, new_param, require, single_or_tuple
from prunekit.net.channel_rules import OPAQUE, Flow
from prunekit.net.layers.base import CaffeLayer
from prunekit.net.layers.convolution import parse_geometry


class ColumnConvolution(CaffeLayer):
    """Column-pruned 2-D convolution: ``W[:, kept] · im2col(x)[kept, :]`` (+ bias)."""

    channel_rule = OPAQUE

    def channel_flow(self, bottom_shapes) -> Flow:
        return Flow(OPAQUE, ": a ColumnConvolution (compact's column form) is not traced "
                            "through; its input channels stay and its filters are kept")

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        cp = param.convolution_param
        check_num_bottoms(self, bottom_shapes, 1, -1)
        shape = tuple(bottom_shapes[0])
        require(self, all(tuple(s) == shape for s in bottom_shapes),
                f"all bottoms must have the same shape, got {bottom_shapes}")
        require(self, len(shape) == 4, f"needs an (N, C, H, W) bottom, got {shape}")
        require(self, cp.axis in (1, -3), f"only axis 1 (channels) is supported, got {cp.axis}")
        self.geometry = parse_geometry(self, cp, 2)
        self.num_output, self.group = cp.num_output, cp.group
        require(self, self.num_output > 0, "num_output must be > 0")
        require(self, self.group > 0, "group must be > 0")
        require(self, shape[1] % self.group == 0 and self.num_output % self.group == 0,
                f"input channels ({shape[1]}) and num_output ({self.num_output}) must be "
                f"multiples of group ({self.group})")
        self.channels_per_group = shape[1] // self.group
        self.kept = self._kept_columns(param)
        g = self.geometry
        self.plan = make_plan(self.kept, self.channels_per_group, self.group, g.kernel,
                              g.stride, g.pad, g.dilation)
        self._plans = {self.plan.order.device: self.plan}   # index tensors per device (CUDA)
        self.output_spatial(shape[2:])
        self.weight = new_param(self, (self.num_output, len(self.kept)), cp.weight_filler)
        self.blob_names = ["weight"]
        self.bias_term = cp.bias_term
        if self.bias_term:
            self.bias = new_param(self, (self.num_output,), cp.bias_filler)
            self.blob_names.append("bias")

    @property
    def num_columns(self) -> int:
        """Columns of the dense per-group weight matrix: C/g · kh · kw."""
        return self.channels_per_group * self.geometry.kernel[0] * self.geometry.kernel[1]

    def _kept_columns(self, param) -> torch.Tensor:
        """column_param.kept_column as int64, checked: present, non-empty, in range, sorted."""
        require(self, param.HasField("column_param"),
                "column_param { kept_column: ... } is missing (the kept weight columns)")
        kept = list(param.column_param.kept_column)
        require(self, len(kept) > 0, "column_param.kept_column is empty: with no column kept the "
                                     "output would not depend on the input")
        total = self.channels_per_group * self.geometry.kernel[0] * self.geometry.kernel[1]
        bad = [c for c in kept if c >= total]
        require(self, not bad, f"kept_column {bad[0] if bad else 0} out of range: the weight "
                               f"matrix has C/group·kh·kw = {total} columns")
        for a, b in zip(kept, kept[1:]):
            require(self, a < b, f"kept_column must be sorted ascending and unique, got {a} "
                                 f"before {b}")
        return torch.tensor(kept, dtype=torch.int64)

    def output_spatial(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Caffe's output size; error when the kernel extent exceeds the padded input."""
        g = self.geometry
        require(self, all(n + 2 * g.pad[i] >= g.extent(i) for i, n in enumerate(spatial)),
                f"kernel extent {g.extents()} larger than the padded input {tuple(spatial)} "
                f"(pad {g.pad})")
        return tuple((n + 2 * g.pad[i] - g.extent(i)) // g.stride[i] + 1
                     for i, n in enumerate(spatial))

    def dense_weight(self) -> torch.Tensor:
        """The equivalent Convolution weight (num_output, C/g, kh, kw), zero off the kept set."""
        kh, kw = self.geometry.kernel
        w = self.weight.new_zeros(self.num_output, self.num_columns)
        w[:, self.kept.to(w.device)] = self.weight.detach()
        return w.view(self.num_output, self.channels_per_group, kh, kw)

    def forward(self, *bottoms: torch.Tensor):
        """One top per bottom, all with the same weights (as Convolution)."""
        bias = self.bias if self.bias_term else None
        device = self.weight.device
        plan = self._plans.get(device)
        if plan is None:
            plan = self._plans[device] = self.plan.to(device)
        return single_or_tuple([column_conv(plan, x, self.weight, bias) for x in bottoms])
