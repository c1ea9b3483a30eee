"""Caffe ``BatchNorm``: normalisation only (the affine part is a separate Scale layer).

Blobs, in Caffe order: ``mean`` [C] and ``variance`` [C] are *sums* decayed by
moving_average_fraction, and ``moving_average_factor`` [1] is the matching sum of weights, so the
running estimate is blob / factor (0 when the factor is 0). They are buffers: the solver never
updates them (Caffe gives them lr_mult 0); training forward passes do.

Channels: C in, C out (axis 1; a 1-axis blob is one channel), nothing mixes channels.

When the Net finds the Scale that follows (prunekit/net/fuse_bn_scale.py), :meth:`fuse_scale`
makes this layer apply that Scale's γ and β inside its one ``batch_norm`` call (one pass over
the data forward and one backward instead of two each); the Scale keeps its blobs, which stay
the parameters the solver and the pruning methods see, and passes its input through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import check_num_bottoms
from prunekit.net.layers.base import TEST, CaffeLayer


class BatchNorm(CaffeLayer):
    """(x − mean) / sqrt(var + eps) per channel (axis 1), with batch or global statistics;
    then γ·x̂ + β of a fused Scale, if any."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        bp = param.batch_norm_param
        check_num_bottoms(self, bottom_shapes, 1)
        shape = tuple(bottom_shapes[0])
        channels = shape[1] if len(shape) > 1 else 1
        self.use_global_stats = (bp.use_global_stats if bp.HasField("use_global_stats")
                                 else phase == TEST)
        self.moving_average_fraction = bp.moving_average_fraction
        self.eps = bp.eps
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("variance", torch.zeros(channels))
        self.register_buffer("moving_average_factor", torch.zeros(1))
        self.blob_names = ["mean", "variance", "moving_average_factor"]
        self._scale: tuple = ()  # (Scale module,) once fused; a tuple, so not a submodule

    # ------------------------------------------------------------------ fusion with Scale
    def fuse_scale(self, scale) -> None:
        """Run ``scale`` (a Scale layer with bias_term on axis 1, reading only this layer's
        top) inside this layer's forward from now on; ``scale`` becomes the identity."""
        self._scale = (scale,)
        scale.fused_into = self.layer_name

    @property
    def fused_scale(self):
        """The Scale layer applied inside this one, or None."""
        return self._scale[0] if self._scale else None

    def backward_params(self) -> list[torch.Tensor]:
        """A fused Scale's γ and β get their gradients from this layer's backward."""
        scale = self.fused_scale
        return [] if scale is None else scale.own_params()

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x if x.dim() > 1 else x.unsqueeze(1)  # a 1-axis blob is one channel
        scale = self.fused_scale
        weight, bias = (None, None) if scale is None else (scale.scale, scale.bias)
        if self.use_global_stats:
            mean, var = self.global_stats()
            return F.batch_norm(flat, mean, var, weight, bias, training=False,
                                eps=self.eps).view_as(x)
        if scale is None:
            self._accumulate(flat)
            if flat.numel() == flat.shape[1]:  # one value per channel: torch refuses, Caffe: 0
                return x - x
            return F.batch_norm(flat, None, None, training=True, eps=self.eps).view_as(x)
        if flat.numel() == flat.shape[1]:
            self._accumulate(flat)
            return scale.affine(x - x)
        # torch updates running = (1 − momentum)·running + momentum·batch statistic, with the
        # unbiased variance (m/(m−1) times the biased one: Caffe's correction). With momentum 1
        # and zero running tensors they receive this batch's mean and corrected variance, which
        # Caffe's decayed sums then take in; no second pass over x as in _accumulate.
        batch_mean = flat.new_zeros(flat.shape[1])
        batch_var = flat.new_zeros(flat.shape[1])
        y = F.batch_norm(flat, batch_mean, batch_var, weight, bias, training=True,
                         momentum=1.0, eps=self.eps)
        self._take_batch_stats(batch_mean, batch_var)
        return y.view_as(x)

    def global_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Running mean and variance: blob / moving_average_factor, or zeros if it is 0."""
        factor = self.moving_average_factor
        scale = torch.where(factor == 0, torch.zeros_like(factor), 1 / factor)
        return self.mean * scale, self.variance * scale

    @torch.no_grad()
    def _take_batch_stats(self, mean: torch.Tensor, corrected_var: torch.Tensor) -> None:
        """Caffe's update: factor·maf + 1, mean·maf + μ, variance·maf + m/(m−1)·σ²."""
        maf = self.moving_average_fraction
        self.moving_average_factor.mul_(maf).add_(1)
        self.mean.mul_(maf).add_(mean)
        self.variance.mul_(maf).add_(corrected_var)

    @torch.no_grad()
    def _accumulate(self, x: torch.Tensor) -> None:
        """The same update from statistics computed here (unfused; and m = 1, where torch's
        batch_norm refuses), with Caffe's correction m/(m−1) applied to the biased σ²."""
        dims = [0] + list(range(2, x.dim()))
        var, mean = torch.var_mean(x.detach(), dim=dims, correction=0)
        m = x.numel() // x.shape[1]
        self._take_batch_stats(mean, var * (m / (m - 1) if m > 1 else 1.0))
