"""Element-wise Caffe activations: ReLU (with negative_slope), Sigmoid, TanH, ELU."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.net.layers._common import check_num_bottoms
from prunekit.net.channel_rules import PASS
from prunekit.net.layers.base import CaffeLayer


class Elementwise(CaffeLayer):
    """One bottom, one top of the same shape, no blobs; channel c of the top is f(channel c)."""

    channel_rule = PASS

    def channel_constants(self, live, value):
        """A constant c becomes f(c)."""
        return live[0].clone(), self.constant(value[0])

    def constant(self, v: torch.Tensor) -> torch.Tensor:
        """f applied to float64 constants."""
        return self.forward(v)

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1)


class ReLU(Elementwise):
    """max(x, 0) + negative_slope · min(x, 0) (leaky when negative_slope != 0)."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        self.negative_slope = param.relu_param.negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.negative_slope == 0:
            return F.relu(x)
        return F.leaky_relu(x, self.negative_slope)

    def constant(self, v: torch.Tensor) -> torch.Tensor:
        return torch.where(v > 0, v, v * self.negative_slope)


class Sigmoid(Elementwise):
    """1 / (1 + exp(−x))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class TanH(Elementwise):
    """tanh(x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


class ELU(Elementwise):
    """x for x > 0, alpha · (exp(x) − 1) otherwise."""

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        self.alpha = param.elu_param.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.elu(x, self.alpha)

    def constant(self, v: torch.Tensor) -> torch.Tensor:
        return torch.where(v > 0, v, self.alpha * torch.expm1(v))
