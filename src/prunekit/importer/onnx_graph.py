"""Load an ONNX model for import: inputs of fixed shape, the static shape of every tensor, and
constant subgraphs folded away, so each remaining node computes on activations only.

Shapes come from ``onnx.shape_inference`` (run again after folding, so a Reshape whose target
was computed from Shape/Gather/Concat nodes gets a static output shape). A node is folded when
all its inputs are constants (evaluated by ``onnx.reference.ReferenceEvaluator``) or when it is
a Shape/Size of a tensor whose shape is known.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from prunekit.errors import PrunekitError
from prunekit.importer.folding import fold_constants


@dataclass
class Graph:
    """The part of an ONNX graph left to map: nodes on activations, in topological order."""

    source: str
    opset: int
    nodes: list                                   # onnx.NodeProto, topological order
    constants: dict[str, np.ndarray]
    shapes: dict[str, tuple[int, ...]]
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[str]
    _consumers: dict[str, list] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Recompute who reads each tensor (after a pattern rewrote ``nodes``)."""
        self._consumers = {}
        for node in self.nodes:
            for name in node.input:
                self._consumers.setdefault(name, []).append(node)

    def consumers(self, name: str) -> list:
        """Nodes that read tensor ``name`` (a graph output also counts as a reader elsewhere)."""
        return self._consumers.get(name, [])

    def producer(self, name: str):
        """The node that writes ``name``, or None for inputs and constants."""
        for node in self.nodes:
            if name in node.output:
                return node
        return None

    def shape(self, name: str) -> tuple[int, ...]:
        return self.shapes[name]


def onnx_module():
    """The ``onnx`` package, or a one-line error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise PrunekitError("prunekit import needs the onnx package: pip install "
                            "'prunekit[import]' (or pip install onnx)") from None
    return onnx


def load_graph(path: str, input_shape: tuple[int, ...] | None = None) -> Graph:
    """Read ``path`` and return its :class:`Graph` (see the module docstring)."""
    onnx = onnx_module()
    if not os.path.isfile(path):
        raise PrunekitError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(path)
    except Exception as err:  # protobuf DecodeError and friends: not an ONNX file
        raise PrunekitError(f"{path}: not a readable ONNX model ({err})") from None
    opset = _default_opset(model, path)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    real_inputs = [i for i in graph.input if i.name not in initializers]
    if not real_inputs:
        raise PrunekitError(f"{path}: the graph has no input")
    shapes_in = _input_shapes(real_inputs, input_shape, path)
    for value, shape in zip(real_inputs, shapes_in):
        _set_static_shape(value, shape)
    del graph.value_info[:]
    model = _infer(model, path)
    constants, nodes = fold_constants(model, _static_shapes(model), opset, path)
    model = _rebuilt(model, nodes, constants)
    model = _infer(model, path)
    shapes = _static_shapes(model)
    for arr_name, arr in constants.items():
        shapes[arr_name] = tuple(arr.shape)
    outputs = [o.name for o in model.graph.output]
    _check_static(nodes, shapes, path)
    return Graph(path, opset, nodes, constants, shapes,
                 [(v.name, s) for v, s in zip(real_inputs, shapes_in)], outputs)


def _default_opset(model, path: str) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    raise PrunekitError(f"{path}: no default-domain opset in opset_import")


def _input_shapes(inputs, given: tuple[int, ...] | None, path: str) -> list[tuple[int, ...]]:
    """Static shape of each input: ``given`` (one input only), or the file's with an unknown
    batch axis read as 1; any other unknown axis needs --input-shape."""
    if given is not None:
        if len(inputs) != 1:
            raise PrunekitError(f"{path}: --input-shape sets one input, the model has "
                                f"{len(inputs)} ({', '.join(i.name for i in inputs)})")
        declared = inputs[0].type.tensor_type.shape.dim
        if declared and len(declared) != len(given):
            raise PrunekitError(f"{path}: --input-shape {','.join(map(str, given))} has "
                                f"{len(given)} axes, input '{inputs[0].name}' has {len(declared)}")
        return [tuple(given)]
    out = []
    for value in inputs:
        dims = value.type.tensor_type.shape.dim
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                 for d in dims]
        if shape and shape[0] is None:
            shape[0] = 1
        if not dims or None in shape:
            raise PrunekitError(f"{path}: input '{value.name}' has an unknown size "
                                f"({_dims_text(dims)}); give --input-shape N,C,H,W")
        out.append(tuple(shape))
    return out


def _dims_text(dims) -> str:
    return "[" + ", ".join(str(d.dim_value) if d.HasField("dim_value") else (d.dim_param or "?")
                           for d in dims) + "]"


def _set_static_shape(value, shape: tuple[int, ...]) -> None:
    tensor_shape = value.type.tensor_type.shape
    tensor_shape.ClearField("dim")
    for d in shape:
        tensor_shape.dim.add().dim_value = int(d)


def _infer(model, path: str):
    onnx = onnx_module()
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PrunekitError(f"{path}: ONNX shape inference failed: {first}") from None


def _static_shapes(model) -> dict[str, tuple[int, ...]]:
    """Shapes of every value whose dims are all known."""
    shapes = {}
    graph = model.graph
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(
                d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(int(d.dim_value) for d in dims)
    for init in graph.initializer:
        shapes[init.name] = tuple(int(d) for d in init.dims)
    return shapes


def _rebuilt(model, nodes: list, constants: dict[str, np.ndarray]):
    """``model`` with only ``nodes`` left and the constants they read as initializers."""
    onnx = onnx_module()
    from onnx import numpy_helper

    graph = model.graph
    used = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    initializers = [numpy_helper.from_array(np.asarray(arr), name)
                    for name, arr in constants.items() if name in used]
    init_names = {t.name for t in initializers}
    inputs = [i for i in graph.input if i.name not in init_names and
              i.name not in {t.name for t in graph.initializer}]
    new_graph = onnx.helper.make_graph(nodes, graph.name, inputs, list(graph.output),
                                       initializers)
    out = onnx.helper.make_model(new_graph, opset_imports=list(model.opset_import))
    out.ir_version = model.ir_version
    return out


def _check_static(nodes: list, shapes: dict, path: str) -> None:
    for node in nodes:
        for name in node.output:
            if name and name not in shapes:
                raise PrunekitError(
                    f"{path}: node '{node.name}' ({node.op_type}): the shape of its output "
                    f"'{name}' is not known after shape inference (a data-dependent shape); "
                    "prunekit needs static shapes")
