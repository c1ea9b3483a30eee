"""Multi-node ONNX idioms rewritten into one node each before mapping:

* SiLU as exported, ``Mul(x, Sigmoid(x))`` -> pseudo-op Swish; ``Mul(x, HardSigmoid(x))`` with
  α = 1/6, β = 1/2 -> ONNX HardSwish;
* ShuffleNet's channel shuffle, ``Reshape(N, g, C/g, …) -> Transpose(0, 2, 1, …) ->
  Reshape(N, C, …)`` -> pseudo-op ShuffleChannel(group g);
* Slices that together tile one axis of one tensor (``x.chunk(2, dim=1)``) -> pseudo-op
  SliceTiles, one Caffe Slice with a top per part.

A rewrite applies only when the inner tensors are read by nothing else. Pseudo-ops live in
domain ``prunekit`` so they can never be confused with a node of the user's file.
"""

from __future__ import annotations

from prunekit.importer.onnx_graph import Graph
from prunekit.importer.slicing import slice_range

DOMAIN = "prunekit"


def apply_patterns(graph: Graph) -> None:
    """Rewrite ``graph.nodes`` in place (see the module docstring)."""
    for rewrite in (_activation_products, _channel_shuffles, _slice_tiles):
        graph.nodes = rewrite(graph)
        graph.reindex()


def _node(op: str, inputs: list[str], outputs: list[str], like, suffix: str, **attrs):
    from onnx import helper

    scope = like.name.rsplit("/", 1)[0] if "/" in like.name else ""
    name = f"{scope}/{suffix}" if like.name.startswith("/") else f"{like.name}_{suffix}"
    domain = DOMAIN if op in ("Swish", "ShuffleChannel", "SliceTiles") else ""
    return helper.make_node(op, inputs, outputs, name=name, domain=domain, **attrs)


def _only_reader(graph: Graph, tensor: str, node) -> bool:
    return graph.consumers(tensor) == [node] and tensor not in graph.outputs


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _activation_products(graph: Graph) -> list:
    out, dropped, replaced = [], set(), {}
    for node in graph.nodes:
        if node.op_type != "Mul" or node.domain not in ("", "ai.onnx"):
            continue
        for gate, other in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            src = graph.producer(gate)
            if src is None or list(src.input[:1]) != [other] or not _only_reader(graph, gate, node):
                continue
            if src.op_type == "Sigmoid":
                replaced[id(node)] = _node("Swish", [other], [node.output[0]], src, "Swish")
            elif (src.op_type == "HardSigmoid" and abs(_attr(src, "alpha", 0.2) - 1 / 6) < 1e-6
                  and abs(_attr(src, "beta", 0.5) - 0.5) < 1e-6):
                replaced[id(node)] = _node("HardSwish", [other], [node.output[0]], src,
                                           "HardSwish")
            else:
                continue
            dropped.add(id(src))
            break
    for node in graph.nodes:
        if id(node) not in dropped:
            out.append(replaced.get(id(node), node))
    return out


def _channel_shuffles(graph: Graph) -> list:
    dropped, replaced = set(), {}
    for first in graph.nodes:
        if first.op_type != "Reshape":
            continue
        x = first.input[0]
        shape, mid = graph.shapes.get(x), graph.shapes.get(first.output[0])
        if shape is None or mid is None or len(shape) < 3 or len(mid) != len(shape) + 1:
            continue
        readers = graph.consumers(first.output[0])
        if len(readers) != 1 or readers[0].op_type != "Transpose":
            continue
        trans = readers[0]
        perm = list(_attr(trans, "perm", []))
        if perm != [0, 2, 1] + list(range(3, len(mid))):
            continue
        after = graph.consumers(trans.output[0])
        if len(after) != 1 or after[0].op_type != "Reshape" or not (
                _only_reader(graph, first.output[0], trans)
                and _only_reader(graph, trans.output[0], after[0])):
            continue
        last = after[0]
        group = mid[1]
        if (tuple(mid) != (shape[0], group, shape[1] // group) + tuple(shape[2:])
                or tuple(graph.shapes.get(last.output[0], ())) != tuple(shape)):
            continue
        dropped.update({id(first), id(trans)})
        replaced[id(last)] = _node("ShuffleChannel", [x], [last.output[0]], first,
                                   "ShuffleChannel", group=int(group))
    return [replaced.get(id(n), n) for n in graph.nodes if id(n) not in dropped]


def _slice_tiles(graph: Graph) -> list:
    groups: dict[tuple[str, int], list] = {}
    for node in graph.nodes:
        if node.op_type != "Slice" or node.input[0] not in graph.shapes:
            continue
        cut = slice_range(node, graph.constants, graph.shapes[node.input[0]])
        if cut is not None and node.input[0] not in graph.constants:
            groups.setdefault((node.input[0], cut[0]), []).append((cut[1], cut[2], node))
    dropped, replaced = set(), {}
    for (x, axis), parts in groups.items():
        parts.sort(key=lambda p: p[0])
        bounds_ok = (parts[0][0] == 0 and parts[-1][1] == graph.shapes[x][axis]
                     and all(a[1] == b[0] for a, b in zip(parts, parts[1:])))
        if len(parts) < 2 or not bounds_ok or any(p[0] == p[1] for p in parts):
            continue
        nodes = [p[2] for p in parts]
        first = min(nodes, key=graph.nodes.index)
        dropped.update(id(n) for n in nodes if n is not first)
        replaced[id(first)] = _node("SliceTiles", [x], [n.output[0] for n in nodes], first,
                                    "Slice", axis=axis, points=[p[0] for p in parts[1:]])
    return [replaced.get(id(n), n) for n in graph.nodes if id(n) not in dropped]
