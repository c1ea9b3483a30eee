"""Caffe ``BatchNorm``: normalisation only (the affine part is a separate Scale layer).

Blobs, in Caffe order: ``mean`` [C] and ``variance`` [C] are *sums* decayed by
moving_average_fraction, and ``moving_average_factor`` [1] is the matching sum of weights, so the
running estimate is blob / factor (0 when the factor is 0). They are buffers: the solver never
updates them (Caffe gives them lr_mult 0); training forward passes do.

Channels: C in, C out (axis 1; a 1-axis blob is one channel); nothing mixes channels.

``forward_with_scale`` is this layer and the Scale after it in one ``batch_norm`` call (one
pass over the data forward and one backward instead of two each): the Net runs exact pairs that
way (prunekit/net/fuse_bn_scale.py); called on its own, the module is Caffe's BatchNorm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import check_num_bottoms
from prunekit.net.channel_rules import AFFINE
from prunekit.net.layers.base import TEST, CaffeLayer


class BatchNorm(CaffeLayer):
    """(x − mean) / sqrt(var + eps) per channel (axis 1), with batch or global statistics."""

    top_reusable = True  # batch_norm's backward needs its input and statistics, not its output
    channel_rule = AFFINE

    def channel_constants(self, live, value):
        """Global statistics: (c − μ)/√(σ² + ε); batch statistics normalise a constant to 0."""
        v = value[0]
        if not self.use_global_stats:
            return live[0].clone(), torch.zeros_like(v)
        mean, var = (t.double() for t in self.global_stats())
        return live[0].clone(), (v - mean) / torch.sqrt(var + self.eps)

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x if x.dim() > 1 else x.unsqueeze(1)  # a 1-axis blob is one channel
        if self.use_global_stats:
            mean, var = self.global_stats()
            return F.batch_norm(flat, mean, var, training=False, eps=self.eps).view_as(x)
        self._accumulate(flat)
        if flat.numel() == flat.shape[1]:  # one value per channel: torch refuses, Caffe gives 0
            return x - x
        return F.batch_norm(flat, None, None, training=True, eps=self.eps).view_as(x)

    def frozen_without_statistics(self) -> bool:
        """Uses global statistics but has none (moving_average_factor 0): BatchNorm has no filler,
        so this is its state when no caffemodel gave it statistics, and it then computes
        x / sqrt(eps), as Caffe does; a stack of them (ResNet-50 has 53) overflows to inf."""
        return self.use_global_stats and float(self.moving_average_factor) == 0

    def forward_with_scale(self, x: torch.Tensor, gamma: torch.Tensor,
                           beta: torch.Tensor) -> torch.Tensor:
        """γ · forward(x) + β per channel (a Scale with bias_term on axis 1), in one op.

        In training torch updates running = (1 − momentum)·running + momentum·statistic, with
        the unbiased variance (m/(m−1) times the biased one: Caffe's correction); with momentum
        1 and zero running tensors they receive this batch's mean and corrected variance, which
        Caffe's decayed sums then take in, with no second pass over x as in ``_accumulate``."""
        if x.numel() == x.shape[1]:  # m = 1: forward's special case (x has >= 2 axes here)
            shape = (1, -1) + (1,) * (x.dim() - 2)
            return torch.addcmul(beta.view(shape), self.forward(x), gamma.view(shape))
        if self.use_global_stats:
            mean, var = self.global_stats()
            return F.batch_norm(x, mean, var, gamma, beta, training=False, eps=self.eps)
        batch_mean = x.new_zeros(x.shape[1])
        batch_var = x.new_zeros(x.shape[1])
        y = F.batch_norm(x, batch_mean, batch_var, gamma, beta, training=True, momentum=1.0,
                         eps=self.eps)
        self._take_batch_stats(batch_mean, batch_var)
        return y

    def global_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Running mean and variance: blob / moving_average_factor, or zeros if it is 0."""
        factor = self.moving_average_factor
        scale = torch.where(factor == 0, torch.zeros_like(factor), 1 / factor)
        return self.mean * scale, self.variance * scale

    @torch.no_grad()
    def _accumulate(self, x: torch.Tensor) -> None:
        """Caffe's update: factor·maf + 1, mean·maf + μ, variance·maf + m/(m−1)·σ² (biased σ²)."""
        dims = [0] + list(range(2, x.dim()))
        var, mean = torch.var_mean(x.detach(), dim=dims, correction=0)
        m = x.numel() // x.shape[1]
        self._take_batch_stats(mean, var, m / (m - 1) if m > 1 else 1.0)

    @torch.no_grad()
    def _take_batch_stats(self, mean: torch.Tensor, var: torch.Tensor,
                          correction: float = 1.0) -> None:
        """Decay the sums by moving_average_fraction and add this batch (factor: add 1)."""
        maf = self.moving_average_fraction
        self.moving_average_factor.mul_(maf).add_(1)
        self.mean.mul_(maf).add_(mean)
        self.variance.mul_(maf).add_(var, alpha=correction)
