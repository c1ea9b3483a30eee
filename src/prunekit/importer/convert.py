"""ONNX file -> Caffe NetParameter + blobs: the import pipeline (package docstring)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError
from prunekit.importer.builder import Builder
from prunekit.importer.onnx_graph import Graph, load_graph
from prunekit.importer.ops import HANDLERS, PSEUDO_OPS, node_attrs, supported_ops
from prunekit.importer.patterns import DOMAIN, apply_patterns


@dataclass
class ImportedNet:
    """A deploy net (Input layers) with its weights, and where each ONNX tensor ended up."""

    net_param: caffe_pb2.NetParameter
    blobs: dict[str, list[np.ndarray]]
    graph: Graph
    blob_of: dict[str, str]           # ONNX tensor name -> Caffe blob name

    @property
    def outputs(self) -> list[tuple[str, str]]:
        """(ONNX output, Caffe blob) pairs, in the ONNX file's order."""
        return [(name, self.blob_of[name]) for name in self.graph.outputs]


def import_onnx(path: str, input_shape: tuple[int, ...] | None = None,
                net_name: str | None = None) -> ImportedNet:
    """Map every node of the ONNX model at ``path`` to Caffe layers (see the package
    docstring); raises PrunekitError naming the first node that cannot be mapped."""
    graph = load_graph(path, input_shape)
    apply_patterns(graph)
    check_supported(graph)
    name = net_name or os.path.splitext(os.path.basename(path))[0]
    builder = Builder(graph, name)
    for tensor, shape in graph.inputs:
        builder.add_input(tensor, "data" if len(graph.inputs) == 1 else _blob_name(tensor),
                          shape)
    for index, node in enumerate(graph.nodes):
        builder.start_node(node, index)
        HANDLERS[node.op_type](node, builder, node_attrs(node))
    for output in graph.outputs:
        if output not in builder.blob_of:
            raise PrunekitError(f"{path}: output '{output}' is a constant, not computed from "
                                "the input")
    return ImportedNet(builder.net, builder.blobs, graph, dict(builder.blob_of))


def check_supported(graph: Graph) -> None:
    """Stop at the first node whose op has no handler, naming it and the supported ops."""
    for node in graph.nodes:
        known = node.op_type in HANDLERS and (
            node.domain == DOMAIN if node.op_type in PSEUDO_OPS - {"Swish"}
            else node.domain in ("", "ai.onnx", DOMAIN))
        if not known:
            op = f"{node.domain}:{node.op_type}" if node.domain else node.op_type
            raise PrunekitError(
                f"{graph.source}: node '{node.name or node.output[0]}' has op type '{op}', "
                f"which prunekit import cannot map to Caffe layers; supported: "
                f"{', '.join(supported_ops())}")


def _blob_name(tensor: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in tensor) or "input"
