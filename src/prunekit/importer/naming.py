"""Caffe layer names from ONNX node names.

torch.onnx.export names a node by its module scope, e.g. ``/layer1/layer1.0/conv1/Conv``; the
layer becomes ``layer1.0.conv1`` (the module's dotted path, as in the model's state_dict), so the
prototxt reads like the PyTorch model. A functional op inside a module (``/layer1/layer1.0/Add``)
gets its op appended (``layer1.0.add``). Nodes without such names become ``<op>_<index>``.
"""

from __future__ import annotations

import re
from collections import Counter

#: Ops that stand for a whole module (nn.Conv2d, nn.ReLU, ...) when alone in their scope.
MODULE_OPS = frozenset({
    "Conv", "ConvTranspose", "BatchNormalization", "Gemm", "MatMul", "Relu", "LeakyRelu",
    "PRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "MaxPool", "AveragePool",
    "GlobalAveragePool", "GlobalMaxPool", "Softmax", "Dropout", "Flatten", "Swish",
    "ShuffleChannel"})


def module_path(node_name: str) -> str:
    """``/a/a.0/b/Op`` -> ``a.0.b`` (each scope segment may repeat its parent's prefix)."""
    parts = [p for p in node_name.split("/") if p][:-1]
    path: list[str] = []
    for part in parts:
        if path and part.startswith(path[-1] + "."):
            path[-1] = part
        else:
            path.append(part)
    return ".".join(path)


class LayerNames:
    """Unique, readable layer names for the nodes of one graph."""

    def __init__(self, nodes: list) -> None:
        self._scope_count = Counter(module_path(n.name) for n in nodes if n.name.startswith("/"))
        self._used: set[str] = set()

    def for_node(self, node, index: int) -> str:
        """A fresh name for ``node`` (the ``index``-th node of the graph)."""
        if node.name.startswith("/"):
            path = module_path(node.name)
            op = node.name.rsplit("/", 1)[-1]
            alone = self._scope_count[path] == 1 and re.sub(r"_\d+$", "", op) in MODULE_OPS
            base = path if (path and alone) else ".".join(p for p in (path, op.lower()) if p)
        else:
            base = re.sub(r"[^\w.\-]", "_", node.name) or f"{node.op_type.lower()}_{index}"
        return self.fresh(base)

    def fresh(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3`` ... if taken."""
        return unique_name(base, self._used)


def unique_name(base: str, used: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3`` ... whichever is not in ``used`` yet; it is added."""
    name, k = base, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name
