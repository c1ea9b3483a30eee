"""ONNX op -> Caffe layer handlers, one module per op family; :data:`HANDLERS` is the one table.

A handler ``fn(node, builder, attrs)`` adds the layers for one node through the
:class:`prunekit.importer.builder.Builder` and raises ``builder.error(...)`` for an attribute or
input it cannot express in Caffe. Ops in domain ``prunekit`` are the pseudo-ops that
prunekit/importer/patterns.py makes from multi-node idioms.
"""

from __future__ import annotations

from prunekit.importer.ops import activation, arithmetic, conv, linear, norm, pool, tensor

HANDLERS = {
    **conv.HANDLERS, **norm.HANDLERS, **activation.HANDLERS, **pool.HANDLERS,
    **arithmetic.HANDLERS, **tensor.HANDLERS, **linear.HANDLERS,
}

#: Pseudo-ops made by prunekit/importer/patterns.py (not ONNX ops a user can name).
PSEUDO_OPS = frozenset({"Swish", "ShuffleChannel", "SliceTiles"})


def supported_ops() -> list[str]:
    """The ONNX op types ``prunekit import`` maps (for the unsupported-op message)."""
    return sorted((set(HANDLERS) - PSEUDO_OPS - {"Transpose"})
                  | {"Transpose (channel shuffle only)"})


def node_attrs(node) -> dict:
    """The node's attributes as plain Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}
