"""Caffe ``Pooling``: MAX, AVE and (TEST phase only) STOCHASTIC over 2-D windows.

Caffe's output size differs from a plain floor formula: out = ceil((H + 2p − k) / s) + 1, minus 1
when padding is used and the last window would start inside the padding ((out−1)·s ≥ H + p).
AVE divides by the window clipped to [−p, H + p) (padding counts, the ceil overhang does not); MAX
ignores padding. torch's ceil_mode pooling implements exactly this when pad ≤ k/2 and its size
agrees; other cases (e.g. pad > k/2, allowed by Caffe up to k−1) pad explicitly and reduce.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.caffe import caffe_pb2
from prunekit.net.layers._common import check_num_bottoms, layer_error, require
from prunekit.net.channel_rules import PASS
from prunekit.net.layers.base import TRAIN, CaffeLayer

_PP = caffe_pb2.PoolingParameter
_FLT_MIN = 1.17549435e-38  # Caffe's starting value of a STOCHASTIC window sum


def caffe_pooled_size(size: int, kernel: int, stride: int, pad: int, any_pad: bool,
                      ceil: bool = True) -> int:
    """Pooled size of one axis exactly as ``PoolingLayer::Reshape`` computes it."""
    span = size + 2 * pad - kernel
    steps = -(-span // stride) if ceil else span // stride
    out = steps + 1
    if any_pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _torch_pooled_size(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """torch's pooling output size (``pooling_output_shape``) for the same parameters."""
    out = (size + 2 * pad - kernel + (stride - 1 if ceil else 0)) // stride + 1
    if ceil and (out - 1) * stride >= size + pad:
        out -= 1
    return out


class Pooling(CaffeLayer):
    """Caffe 2-D pooling with Caffe's output size and AVE divisor."""

    channel_rule = PASS

    def channel_constants(self, live, value):
        """MAX, global and unpadded AVE pooling keep a constant; padded AVE (borders) and
        STOCHASTIC do not."""
        out, v = live[0].clone(), value[0]
        keeps = (self.pool == _PP.MAX or self.global_pooling
                 or (self.pool == _PP.AVE and not any(self.pad)))
        if not keeps:
            out |= v != 0
        return out, v

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        pp = param.pooling_param
        check_num_bottoms(self, bottom_shapes, 1)
        require(self, len(param.top) <= 1, "a second top (the MAX mask) is not supported")
        shape = tuple(bottom_shapes[0])
        require(self, len(shape) == 4, f"input must have 4 axes (N, C, H, W), got {shape}")
        self.pool = pp.pool
        require(self, not (self.pool == _PP.STOCHASTIC and phase == TRAIN),
                "STOCHASTIC pooling is not supported in the TRAIN phase")
        self.global_pooling = pp.global_pooling
        self.kernel = self._read_kernel(pp)
        self.pad = self._read_pair(pp, "pad")
        self.stride = self._read_pair(pp, "stride")
        self.ceil = pp.round_mode == _PP.CEIL
        self._check()
        self.output_size(shape[2:])

    def _read_kernel(self, pp) -> tuple[int, int] | None:
        """(kh, kw), or None for global pooling (the kernel is the input size)."""
        has_size = pp.HasField("kernel_size")
        has_hw = pp.HasField("kernel_h") or pp.HasField("kernel_w")
        if self.global_pooling:
            require(self, not (has_size or has_hw),
                    "with global_pooling: true the kernel size cannot be specified")
            return None
        require(self, has_size or (pp.HasField("kernel_h") and pp.HasField("kernel_w")),
                "kernel size missing: set kernel_size, or both kernel_h and kernel_w")
        require(self, not (has_size and has_hw), "give kernel_size or kernel_h/kernel_w, not both")
        kernel = (pp.kernel_size,) * 2 if has_size else (pp.kernel_h, pp.kernel_w)
        require(self, min(kernel) > 0, f"kernel dimensions must be > 0, got {kernel}")
        return kernel

    def _read_pair(self, pp, name: str) -> tuple[int, int]:
        """pad or stride as (h, w): either ``name`` or both ``name_h`` and ``name_w``."""
        has_h, has_w = pp.HasField(f"{name}_h"), pp.HasField(f"{name}_w")
        if not (has_h or has_w):
            return (getattr(pp, name),) * 2
        require(self, has_h and has_w and not pp.HasField(name),
                f"give {name}, or both {name}_h and {name}_w (not a mix)")
        return getattr(pp, f"{name}_h"), getattr(pp, f"{name}_w")

    def _check(self) -> None:
        """Caffe's LayerSetUp checks on stride, pad and the pooling method."""
        require(self, self.pool in (_PP.MAX, _PP.AVE, _PP.STOCHASTIC),
                f"unknown pooling method {self.pool}")
        require(self, min(self.stride) > 0, f"stride must be > 0, got {self.stride}")
        if self.global_pooling:
            require(self, self.pad == (0, 0) and self.stride == (1, 1),
                    "with global_pooling: true only pad = 0 and stride = 1 are allowed")
        if any(self.pad):
            require(self, self.pool in (_PP.MAX, _PP.AVE),
                    "padding is implemented only for MAX and AVE pooling")
            require(self, self.pad[0] < self.kernel[0] and self.pad[1] < self.kernel[1],
                    f"pad {self.pad} must be smaller than the kernel {self.kernel}")

    def output_size(self, spatial: tuple[int, ...]) -> tuple[int, int]:
        """Caffe's pooled (H, W) for an input of spatial size ``spatial``."""
        kernel = self.kernel or tuple(spatial)
        any_pad = any(self.pad)
        out = []
        for i in range(2):
            if spatial[i] + 2 * self.pad[i] < kernel[i]:
                raise layer_error(self, f"kernel {kernel} larger than the padded input "
                                        f"{tuple(spatial)} (pad {self.pad})")
            out.append(caffe_pooled_size(spatial[i], kernel[i], self.stride[i], self.pad[i],
                                         any_pad, self.ceil))
        return out[0], out[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool with torch's kernels where they agree with Caffe, else pad explicitly."""
        if self.global_pooling and self.pool != _PP.STOCHASTIC:
            # kernel = input, stride 1, pad 0: one window. A reduction, which also traces and
            # exports (ONNX) without shape arithmetic on the input size.
            if self.pool == _PP.MAX:
                return x.amax(dim=(2, 3), keepdim=True)
            return x.mean(dim=(2, 3), keepdim=True)
        kernel = self.kernel or tuple(x.shape[2:])
        out = self.output_size(tuple(x.shape[2:]))
        if self.pool == _PP.STOCHASTIC:
            return self._stochastic_test(x, kernel, out)
        if self._torch_agrees(tuple(x.shape[2:]), kernel, out):
            if self.pool == _PP.MAX:
                return F.max_pool2d(x, kernel, self.stride, self.pad, ceil_mode=self.ceil)
            return F.avg_pool2d(x, kernel, self.stride, self.pad, ceil_mode=self.ceil,
                                count_include_pad=True)
        if self.pool == _PP.MAX:
            padded = self._pad_to_windows(x, kernel, out, torch.finfo(x.dtype).min)
            return F.max_pool2d(padded, kernel, self.stride)
        return self._window_sums(x, kernel, out) / self._ave_divisor(x, kernel, out)

    def _torch_agrees(self, spatial: tuple[int, ...], kernel, out: tuple[int, int]) -> bool:
        """True when torch's pooling (same pad/ceil) yields Caffe's size; it needs pad <= k/2."""
        return all(self.pad[i] <= kernel[i] // 2 and out[i] == _torch_pooled_size(
            spatial[i], kernel[i], self.stride[i], self.pad[i], self.ceil) for i in range(2))

    def _pad_to_windows(self, x: torch.Tensor, kernel, out, value: float) -> torch.Tensor:
        """Pad by ``pad`` before and to exactly cover the last window after (may crop)."""
        after = [(out[i] - 1) * self.stride[i] + kernel[i] - x.shape[2 + i] - self.pad[i]
                 for i in range(2)]
        return F.pad(x, (self.pad[1], after[1], self.pad[0], after[0]), value=value)

    def _window_sums(self, x: torch.Tensor, kernel, out) -> torch.Tensor:
        """Sum of each window over the zero-padded input (padding adds nothing)."""
        padded = self._pad_to_windows(x, kernel, out, 0.0)
        return F.avg_pool2d(padded, kernel, self.stride, divisor_override=1)

    def _ave_divisor(self, x: torch.Tensor, kernel, out) -> torch.Tensor:
        """Caffe's AVE divisor: window size clipped to [−pad, size + pad), as an (oh, ow) map."""
        sizes = []
        for i in range(2):
            start = torch.arange(out[i], device=x.device) * self.stride[i] - self.pad[i]
            end = torch.clamp(start + kernel[i], max=x.shape[2 + i] + self.pad[i])
            sizes.append((end - start).to(x.dtype))
        return sizes[0][:, None] * sizes[1][None, :]

    def _stochastic_test(self, x: torch.Tensor, kernel, out) -> torch.Tensor:
        """Caffe's TEST-phase stochastic pooling: Σx² / (FLT_MIN + Σx) per window."""
        sums = self._window_sums(x, kernel, out)
        squares = self._window_sums(x * x, kernel, out)
        return squares / (sums + _FLT_MIN)
