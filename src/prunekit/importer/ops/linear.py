"""Gemm and MatMul by a constant -> InnerProduct (weight [M, K], Caffe's layout)."""

from __future__ import annotations

import numpy as np


def gemm(node, b, attrs: dict) -> None:
    """Y = α·A·B' + β·C with A the activation (N, K), B constant, C constant or absent."""
    w = b.const(node.input[1])
    if b.const(node.input[0]) is not None or w is None:
        raise b.error("only an activation times a constant weight maps to InnerProduct")
    if attrs.get("transA", 0):
        raise b.error("transA=1: the activation must be (N, K)")
    w = w if attrs.get("transB", 0) else w.T                      # -> [M, K]
    w = w * attrs.get("alpha", 1.0)
    bias = None
    if len(node.input) > 2 and node.input[2]:
        c = b.const(node.input[2])
        if c is None:
            raise b.error("the bias C must be a constant")
        bias = np.broadcast_to(c * attrs.get("beta", 1.0), b.shape(node.output[0])[-1:])
        if c.ndim == 2 and c.shape[0] != 1:
            raise b.error(f"bias C of shape {list(c.shape)} varies along the batch axis")
    _inner_product(node, b, w, bias, axis=1)


def matmul(node, b, attrs: dict) -> None:
    """A (…, K) @ B (K, M): InnerProduct over the last axis, weight Bᵀ, no bias."""
    w = b.const(node.input[1])
    if b.const(node.input[0]) is not None or w is None or w.ndim != 2:
        raise b.error("only an activation times a constant 2-D matrix maps to InnerProduct")
    rank = len(b.shape(node.input[0]))
    if rank < 2:
        raise b.error("a 1-D activation has no batch axis")
    _inner_product(node, b, w.T, None, axis=rank - 1)


def _inner_product(node, b, w: np.ndarray, bias, axis: int) -> None:
    lp = b.layer("InnerProduct", [b.bottom(node.input[0])], outputs=[node.output[0]])
    ip = lp.inner_product_param
    ip.num_output = int(w.shape[0])
    if axis != 1:
        ip.axis = axis
    ip.bias_term = bias is not None
    b.set_blobs(lp, [w] + ([np.array(bias)] if bias is not None else []))


HANDLERS = {"Gemm": gemm, "MatMul": matmul}
