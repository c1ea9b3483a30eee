"""BatchNormalization -> BatchNorm (global statistics, moving_average_factor 1) + Scale
(γ, β with bias_term), Caffe's usual pair; TEST uses the statistics, TRAIN recomputes them."""

from __future__ import annotations

import numpy as np


def batch_normalization(node, b, attrs: dict) -> None:
    if attrs.get("training_mode", 0):
        raise b.error("training_mode=1: export the model in eval mode")
    if len([o for o in node.output if o]) > 1:
        raise b.error("running-statistics outputs (training graph) are not supported")
    gamma, beta, mean, var = (b.const(name) for name in node.input[1:5])
    if any(v is None for v in (gamma, beta, mean, var)):
        raise b.error("scale, bias, mean and variance must be constants (initializers)")
    shape = b.shape(node.input[0])
    channels = shape[1] if len(shape) > 1 else 1
    if gamma.size != channels:
        raise b.error(f"{gamma.size} scales for {channels} channels")
    bn = b.layer("BatchNorm", [b.bottom(node.input[0])])
    bn.batch_norm_param.eps = float(attrs.get("epsilon", 1e-5))
    b.set_blobs(bn, [mean.reshape(-1), var.reshape(-1), np.ones(1, np.float32)])
    scale = b.layer("Scale", [bn.top[0]], outputs=[node.output[0]], suffix="_scale")
    scale.scale_param.bias_term = True
    b.set_blobs(scale, [gamma.reshape(-1), beta.reshape(-1)])


HANDLERS = {"BatchNormalization": batch_normalization}
