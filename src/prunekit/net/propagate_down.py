"""Caffe's ``propagate_down``: per bottom, whether the layer sends a gradient back to it.

``propagate_down: false`` on bottom k stops the gradient there: the layers that produced that
bottom get nothing back through this layer (their parameters still learn through any other
path, and this layer's own parameters still learn). Caffe requires either no value or one per
bottom. Here a stopped bottom is handed to the layer detached from the autograd graph, which is
exactly "no diff flows to it".
"""

from __future__ import annotations

import torch

from prunekit.errors import PrunekitError


def stopped_bottoms(lp, where: str) -> tuple[bool, ...]:
    """For each bottom of ``lp``, True where its ``propagate_down`` is false; ``()`` when unset.

    Raises PrunekitError when the count is neither 0 nor the number of bottoms (Caffe's CHECK
    "propagate_down param must be specified either 0 or bottom_size times").
    """
    flags = list(lp.propagate_down)
    if not flags:
        return ()
    if len(flags) != len(lp.bottom):
        raise PrunekitError(f"{where}: {len(flags)} propagate_down value(s) for "
                            f"{len(lp.bottom)} bottom(s); give none or one per bottom")
    return tuple(not flag for flag in flags)


def cut_gradients(stopped: tuple[bool, ...], bottoms: list[torch.Tensor]) -> list[torch.Tensor]:
    """``bottoms`` with the stopped ones detached (no copy: the same values)."""
    if not any(stopped):
        return bottoms
    return [b.detach() if stop else b for b, stop in zip(bottoms, stopped)]
