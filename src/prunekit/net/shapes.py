"""Top-shape inference, Caffe's ``Reshape`` pass.

Caffe layers compute their top shapes from bottom shapes at set-up. Rather than writing that
arithmetic twice (once in ``forward``, once for shapes), the layer's own forward runs on "meta"
tensors, which carry shapes but no data and cost nothing. Layers with an op that has no meta
kernel fall back to one real forward on zeros, in eval mode so no running statistic moves
(after checking those zeros fit in memory).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from prunekit.net.memory import check_fits, shape_bytes


def infer_top_shapes(module: nn.Module, bottom_shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Shapes of the tensors ``module(*bottoms)`` returns for bottoms of ``bottom_shapes``."""
    try:
        out = _meta_forward(module, bottom_shapes)
    except (NotImplementedError, RuntimeError, TypeError):
        out = _zeros_forward(module, bottom_shapes)
    tops = (out,) if isinstance(out, torch.Tensor) else tuple(out)
    return [tuple(t.shape) for t in tops]


def _meta_forward(module: nn.Module, bottom_shapes):
    state = {name: t.to("meta") for name, t in module.named_parameters()}
    state.update({name: t.to("meta") for name, t in module.named_buffers()})
    bottoms = tuple(torch.empty(shape, device="meta") for shape in bottom_shapes)
    with torch.no_grad():
        return functional_call(module, state, bottoms)


def _zeros_forward(module: nn.Module, bottom_shapes):
    nbytes = sum(shape_bytes(shape) for shape in bottom_shapes)
    check_fits(f"layer '{getattr(module, 'layer_name', '?')}'",
               "a shape-inference forward on zeros of its bottom shapes", nbytes)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return module(*[torch.zeros(shape) for shape in bottom_shapes])
    finally:
        module.train(was_training)
