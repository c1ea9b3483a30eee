"""Caffe ``Convolution``: weight [num_output, C/group, k...], optional bias [num_output].

Geometry follows ``BaseConvolutionLayer::LayerSetUp``: kernel_size / pad / stride / dilation are
repeated fields given 0, 1 or once per spatial axis, or (2-D only) kernel_h/kernel_w, pad_h/pad_w,
stride_h/stride_w. 1-D, 2-D and 3-D convolutions run on torch's conv{1,2,3}d. Several bottoms
share the weights and give one top each, as in Caffe.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import (
    check_num_bottoms, layer_error, new_param, require, single_or_tuple)
from prunekit.net.channel_rules import FILTERS, FilterGeometry, Flow
from prunekit.net.layers.base import CaffeLayer


@dataclass(frozen=True)
class ConvGeometry:
    """Per-spatial-axis kernel, stride, pad and dilation (each a tuple of one int per axis)."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pad: tuple[int, ...]
    dilation: tuple[int, ...]

    def extent(self, i: int) -> int:
        """Effective kernel size on axis i: d·(k − 1) + 1."""
        return self.dilation[i] * (self.kernel[i] - 1) + 1

    def extents(self) -> tuple[int, ...]:
        """Effective kernel size on every spatial axis."""
        return tuple(self.extent(i) for i in range(len(self.kernel)))


def _per_axis(layer, name: str, values, hw: tuple | None, n: int, default: int) -> tuple[int, ...]:
    """Resolve one repeated field (or its _h/_w pair ``hw``) to one value per spatial axis."""
    if hw is not None:
        require(layer, n == 2, f"{name}_h/{name}_w can only be used for 2-D convolution")
        require(layer, len(values) == 0,
                f"give either {name} or {name}_h/{name}_w, not both")
        return hw
    values = list(values)
    require(layer, len(values) in (0, 1, n),
            f"{name} must be given 0, 1 or {n} (once per spatial axis) times, got {len(values)}")
    if not values:
        return (default,) * n
    return tuple(values) * n if len(values) == 1 else tuple(values)


def _hw(cp, name: str) -> tuple[int, int] | None:
    """(name_h, name_w) when either is set, else None (Caffe's has_x_h() || has_x_w())."""
    if cp.HasField(f"{name}_h") or cp.HasField(f"{name}_w"):
        return getattr(cp, f"{name}_h"), getattr(cp, f"{name}_w")
    return None


def parse_geometry(layer, cp, num_spatial: int) -> ConvGeometry:
    """Read a ConvolutionParameter's kernel/stride/pad/dilation, with Caffe's checks."""
    require(layer, cp.kernel_size or cp.HasField("kernel_h") or cp.HasField("kernel_w"),
            "kernel size missing: set kernel_size or kernel_h and kernel_w")
    kernel = _per_axis(layer, "kernel_size", cp.kernel_size, _hw(cp, "kernel"), num_spatial, 0)
    stride = _per_axis(layer, "stride", cp.stride, _hw(cp, "stride"), num_spatial, 1)
    pad = _per_axis(layer, "pad", cp.pad, _hw(cp, "pad"), num_spatial, 0)
    dilation = _per_axis(layer, "dilation", cp.dilation, None, num_spatial, 1)
    require(layer, all(k > 0 for k in kernel), f"kernel dimensions must be > 0, got {kernel}")
    require(layer, all(s > 0 for s in stride), f"stride must be > 0, got {stride}")
    require(layer, all(d > 0 for d in dilation), f"dilation must be > 0, got {dilation}")
    return ConvGeometry(kernel, stride, pad, dilation)


class Convolution(CaffeLayer):
    """Caffe Convolution (cross-correlation, like Caffe's im2col + GEMM)."""

    top_reusable = True  # the conv's backward needs its input and weights, not its output
    channel_rule = FILTERS

    transposed = False

    def channel_flow(self, bottom_shapes) -> Flow:
        """Filters; a depthwise conv (group == input channels > 1) ties each input channel to
        its num_output/group filters (removing the channel removes them)."""
        channels = int(bottom_shapes[0][1])
        if self.group > 1 and self.group == channels:
            return Flow(FILTERS, rows_per_input=self.num_output // self.group)
        return Flow(FILTERS)

    def filter_geometry(self, bottom_shape: tuple[int, ...]) -> FilterGeometry:
        """Row n = filter n; input channel c = C/g-local columns (c mod C/g)·K … +K."""
        w = self.weight
        return FilterGeometry(int(w.shape[0]), int(self.group), math.prod(w.shape[2:]),
                              int(bottom_shape[1]), True)

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        cp = param.convolution_param
        check_num_bottoms(self, bottom_shapes, 1, -1)
        shape = tuple(bottom_shapes[0])
        require(self, all(tuple(s) == shape for s in bottom_shapes),
                f"all bottoms must have the same shape, got {bottom_shapes}")
        require(self, cp.axis in (1, -len(shape) + 1),
                f"only axis 1 (channels) is supported, got axis {cp.axis}")
        num_spatial = len(shape) - 2
        require(self, 1 <= num_spatial <= 3,
                f"needs a bottom of shape (N, C, spatial...) with 1 to 3 spatial axes, "
                f"got {shape}")
        self.geometry = parse_geometry(self, cp, num_spatial)
        self.num_output = cp.num_output
        self.group = cp.group
        channels = shape[1]
        require(self, self.num_output > 0, "num_output must be > 0")
        require(self, self.group > 0, "group must be > 0")
        require(self, channels % self.group == 0,
                f"input channels ({channels}) must be a multiple of group ({self.group})")
        require(self, self.num_output % self.group == 0,
                f"num_output ({self.num_output}) must be a multiple of group ({self.group})")
        self.output_spatial(shape[2:])  # validates the geometry against the input size
        self.weight = new_param(self, self.weight_shape(channels), cp.weight_filler)
        self.blob_names = ["weight"]
        self.bias_term = cp.bias_term
        if self.bias_term:
            self.bias = new_param(self, (self.num_output,), cp.bias_filler)
            self.blob_names.append("bias")
        self._fn = getattr(F, f"conv{'_transpose' if self.transposed else ''}{num_spatial}d")

    def weight_shape(self, channels: int) -> tuple[int, ...]:
        """[num_output, C/group, k...] (Deconvolution overrides)."""
        return (self.num_output, channels // self.group) + self.geometry.kernel

    def output_spatial(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """Caffe's output size (in + 2p − extent) / s + 1 per axis; error if not positive."""
        g = self.geometry
        if any(n + 2 * g.pad[i] < g.extent(i) for i, n in enumerate(spatial)):
            raise layer_error(self, f"kernel extent {g.extents()} larger than the padded input "
                                    f"{tuple(spatial)} (pad {g.pad})")
        return tuple((n + 2 * g.pad[i] - g.extent(i)) // g.stride[i] + 1
                     for i, n in enumerate(spatial))

    def forward(self, *bottoms: torch.Tensor):
        """One convolved top per bottom, all with the same weights."""
        bias = self.bias if self.bias_term else None
        g = self.geometry
        return single_or_tuple([
            self._fn(x, self.weight, bias, stride=g.stride, padding=g.pad,
                     dilation=g.dilation, groups=self.group) for x in bottoms])
