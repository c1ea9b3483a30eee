"""Whether a module has torch hooks, so that the Net's fast paths step aside for it.

The Net runs some layers in ways that skip the module call (a BatchNorm + Scale pair as one op)
or overwrite a top in place (ReLU). Code that hooks a layer to see its input or output (feature
statistics, debugging) must see the layer's own values, so a hooked module — or any module,
while global module hooks are registered — runs as its own Caffe layer.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules import module as _module


def is_hooked(module: nn.Module) -> bool:
    """True when a forward/backward (pre-)hook is registered on ``module`` or globally."""
    return bool(module._forward_hooks or module._forward_pre_hooks
                or module._backward_hooks or module._backward_pre_hooks
                or _module._global_forward_hooks or _module._global_forward_pre_hooks
                or _module._global_backward_hooks or _module._global_backward_pre_hooks)
