"""Constant folding for the importer: evaluate every node whose inputs are all constants.

Evaluation is ``onnx.reference.ReferenceEvaluator`` (ONNX's own reference implementation of each
op), one node at a time, so the folded values are the ONNX-defined ones. Shape and Size of a
tensor with a known static shape are constants too; that is what turns a traced
``x.view(x.size(0), ...)`` into a Reshape by a constant shape.
"""

from __future__ import annotations

import numpy as np

from prunekit.errors import PrunekitError


def fold_constants(model, shapes: dict[str, tuple[int, ...]], opset: int,
                   path: str) -> tuple[dict[str, np.ndarray], list]:
    """(constants by tensor name, nodes left in order) for ``model``'s main graph."""
    from onnx import numpy_helper

    constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    left = []
    for node in model.graph.node:
        value = _constant_value(node, constants, shapes, opset, path)
        if value is None:
            left.append(node)
            continue
        for name, arr in zip(node.output, value):
            if name:
                constants[name] = np.asarray(arr)
    return constants, _live(left, [o.name for o in model.graph.output])


def _constant_value(node, constants: dict, shapes: dict, opset: int, path: str):
    """The node's outputs if they are constants, else None."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type in ("Shape", "Size") and node.input[0] in shapes:
        return [_shape_value(node, shapes[node.input[0]])]
    inputs = [name for name in node.input if name]
    if node.op_type in ("RandomNormal", "RandomUniform", "RandomNormalLike",
                        "RandomUniformLike", "Multinomial", "Bernoulli"):
        return None
    if not all(name in constants for name in inputs):
        return None
    from onnx.reference import ReferenceEvaluator

    try:
        evaluator = ReferenceEvaluator(node, opsets={"": opset})
        return evaluator.run(None, {name: constants[name] for name in inputs})
    except Exception as err:
        raise PrunekitError(f"{path}: node '{node.name}' ({node.op_type}): folding its "
                            f"constant inputs failed: {err}") from None


def _shape_value(node, shape: tuple[int, ...]) -> np.ndarray:
    if node.op_type == "Size":
        return np.array(int(np.prod(shape)), dtype=np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.array(shape[slice(start, end)], dtype=np.int64)


def _live(nodes: list, outputs: list[str]) -> list:
    """Drop nodes none of whose outputs reach a graph output."""
    needed = set(outputs)
    kept = []
    for node in reversed(nodes):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
    return kept[::-1]
