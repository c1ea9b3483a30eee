"""Caffe ``Concat``: join bottoms along ``axis`` (or the legacy ``concat_dim``)."""

from __future__ import annotations

import torch

from prunekit.net.layers._common import canonical_axis, check_num_bottoms, require
from prunekit.net.channel_rules import CONCATENATES, COUPLES, Flow
from prunekit.net.layers.base import CaffeLayer


def legacy_axis(layer, params, legacy_field: str, num_axes: int) -> int:
    """``axis`` or the deprecated ``concat_dim``/``slice_dim`` (non-negative), not both."""
    has_legacy = params.HasField(legacy_field)
    require(layer, not (has_legacy and params.HasField("axis")),
            f"give either axis or {legacy_field}, not both")
    if has_legacy:
        axis = getattr(params, legacy_field)
        require(layer, axis < num_axes,
                f"{legacy_field} {axis} out of range for a {num_axes}-axis blob")
        return axis
    return canonical_axis(layer, params.axis, num_axes)


class Concat(CaffeLayer):
    """torch.cat with Caffe's shape checks (same shape except on the concat axis)."""

    channel_rule = CONCATENATES

    def channel_flow(self, bottom_shapes) -> Flow:
        """Along axis 1 the bottoms' channels go end to end; along another axis channel c of the
        top is made of channel c of every bottom (coupled)."""
        return Flow(CONCATENATES if self.axis == 1 else COUPLES)

    def channel_constants(self, live, value):
        if self.axis == 1:
            return torch.cat(live), torch.cat(value)
        # constant only where all bottoms hold the same constant
        values = torch.stack(value)
        out = torch.stack(live).any(0) | (values != values[0]).any(0)
        return out, torch.where(out, 0.0, values[0])

    def __init__(self, param, bottom_shapes: list[tuple[int, ...]], phase: int) -> None:
        super().__init__(param, bottom_shapes, phase)
        check_num_bottoms(self, bottom_shapes, 1, -1)
        first = tuple(bottom_shapes[0])
        self.axis = legacy_axis(self, param.concat_param, "concat_dim", len(first))
        for shape in bottom_shapes[1:]:
            shape = tuple(shape)
            same = len(shape) == len(first) and all(
                a == b for i, (a, b) in enumerate(zip(shape, first)) if i != self.axis)
            require(self, same, f"all bottoms must have the same shape except on axis "
                                f"{self.axis}: {first} vs {shape}")

    def forward(self, *bottoms: torch.Tensor) -> torch.Tensor:
        return torch.cat(bottoms, dim=self.axis)
