"""The Caffe net under construction: layers, their blobs, and which Caffe blob holds each ONNX
tensor. Op handlers (prunekit/importer/ops/) only talk to a :class:`Builder`."""

from __future__ import annotations

import numpy as np

from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError
from prunekit.importer.naming import LayerNames, unique_name
from prunekit.importer.onnx_graph import Graph


class Builder:
    """Accumulates a NetParameter (deploy form: Input layers first) and its blobs."""

    def __init__(self, graph: Graph, net_name: str) -> None:
        self.graph = graph
        self.net = caffe_pb2.NetParameter(name=net_name)
        self.blobs: dict[str, list[np.ndarray]] = {}
        self.blob_of: dict[str, str] = {}     # ONNX tensor -> Caffe blob
        self.names = LayerNames(graph.nodes)
        self._node = None
        self._node_name = ""
        self._blob_names: set[str] = set()

    # ------------------------------------------------------------------ context
    def start_node(self, node, index: int) -> None:
        """Layers added next belong to ``node`` (names and error messages)."""
        self._node = node
        self._node_name = self.names.for_node(node, index)
        self._first = True

    def error(self, message: str) -> PrunekitError:
        """A PrunekitError naming the file, the current node and its op type."""
        node = self._node
        return PrunekitError(f"{self.graph.source}: node '{node.name or node.output[0]}' "
                             f"({node.op_type}): {message}")

    # ------------------------------------------------------------------ tensors
    def const(self, tensor: str) -> np.ndarray | None:
        """The value of a constant tensor, or None for an activation."""
        return self.graph.constants.get(tensor) if tensor else None

    def shape(self, tensor: str) -> tuple[int, ...]:
        return self.graph.shape(tensor)

    def bottom(self, tensor: str) -> str:
        """The Caffe blob holding activation ``tensor``."""
        if tensor in self.blob_of:
            return self.blob_of[tensor]
        if tensor in self.graph.constants:
            raise self.error(f"input '{tensor}' is a constant where prunekit needs an "
                             "activation")
        raise self.error(f"input '{tensor}' is not produced by any mapped node")

    def alias(self, tensor: str, blob: str) -> None:
        """ONNX ``tensor`` is the same values as Caffe ``blob`` (Identity, no-op Reshape...)."""
        self.blob_of[tensor] = blob

    # ------------------------------------------------------------------ layers
    def add_input(self, tensor: str, blob: str, shape: tuple[int, ...]) -> None:
        lp = self.net.layer.add(name=blob, type="Input", top=[blob])
        lp.input_param.shape.add().dim.extend(int(d) for d in shape)
        self.blob_of[tensor] = blob
        self._blob_names.add(blob)

    def layer(self, type_: str, bottoms: list[str], outputs: list[str] | None = None,
              suffix: str = "", num_tops: int = 1) -> caffe_pb2.LayerParameter:
        """Add a layer reading Caffe blobs ``bottoms``. Its tops are new blobs named after the
        layer; they hold ONNX tensors ``outputs`` when given (else ``num_tops`` internal ones).
        ``suffix`` names a helper layer of the node (``_scale`` after a BatchNorm)."""
        if self._first and not suffix:
            name, self._first = self._node_name, False
        else:
            name = self.names.fresh(f"{self._node_name}{suffix or '_aux'}")
        lp = self.net.layer.add(name=name, type=type_, bottom=list(bottoms))
        count = len(outputs) if outputs is not None else num_tops
        for i in range(count):
            top = self._fresh_blob(name if count == 1 else f"{name}_{i}")
            lp.top.append(top)
            if outputs is not None and outputs[i]:
                self.blob_of[outputs[i]] = top
        return lp

    def set_blobs(self, lp: caffe_pb2.LayerParameter, arrays: list[np.ndarray]) -> None:
        self.blobs[lp.name] = [np.array(a, dtype=np.float32, order="C") for a in arrays]

    def _fresh_blob(self, base: str) -> str:
        return unique_name(base, self._blob_names)
