"""``compact``: turn a zero-masked model into a physically smaller one with the same outputs.

Masked is not compact: pruning keeps full shapes and zeros (docs/compact.md). This package removes the
zero structure and carries each removal through the graph:

* trace.py — what every channel holds (live, or a constant) and which channels are tied;
* plan.py — which channels go, and which are kept back (groups, --round-to, carriers, pins);
* fold_constants.py — removed non-zero constants go into a bias, a BatchNorm mean or a carrier;
* kernel_trim.py — all-zero outer kernel rows/columns go, with the pad adjusted;
* slice_weights.py — the new blobs; rewrite_prototxt.py — the new prototxt fields;
* verify.py — masked vs compacted outputs on a random input; report.py — the printed report;
* fold_bn.py — (``--fold-bn``, inference only) BatchNorm + Scale folded into the conv before them.
"""

from __future__ import annotations

from dataclasses import dataclass

from prunekit.caffe import caffe_pb2
from prunekit.compact.plan import Plan, make_plan
from prunekit.compact.rewrite_prototxt import rewrite_net
from prunekit.compact.slice_weights import CompactedWeights, LayerChange, compact_weights
from prunekit.compact.trace import ChannelTrace, other_phase_pins
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import PHASE_NAMES, Net
from prunekit.net.weights import load_net_param_blobs

__all__ = ["Compaction", "compact", "build_compacted", "build_with_blobs", "LayerChange"]


@dataclass
class Compaction:
    """The compacted prototxt (all phases), its blobs and the plan that made them."""

    net_param: caffe_pb2.NetParameter
    weights: CompactedWeights
    plan: Plan

    def stop_layers(self) -> set[str]:
        """Names of the layers the trace did not cross (their inputs keep every channel)."""
        return {layer.name for layer in self.plan.trace.layers if layer.kind == "stop"}


def compact(net_param: caffe_pb2.NetParameter, net: Net, round_to: int = 1) -> Compaction:
    """Compact ``net`` (built from ``net_param`` for one phase, with its masked weights loaded).

    ``round_to``: keep filter counts of changed layers multiples of it (1: no rounding).
    """
    pins = other_phase_pins(net_param, net, PHASE_NAMES[net.phase])
    plan = make_plan(ChannelTrace(net, pins), round_to)
    weights = compact_weights(plan)
    return Compaction(rewrite_net(net_param, weights.changes), weights, plan)


def build_compacted(compaction: Compaction, phase: int, source: str = "<compacted>") -> Net:
    """The compacted net for ``phase`` (batch 1) with its blobs loaded; its layer shapes are
    checked against the blobs on the way (a mismatch would be a prunekit bug)."""
    arrays = {name: [t.float().numpy() for t in blobs]
              for name, blobs in compaction.weights.blobs.items()}
    return build_with_blobs(compaction.net_param, arrays, phase, source)


def build_with_blobs(net_param: caffe_pb2.NetParameter, blobs: dict, phase: int,
                     source: str) -> Net:
    """The net of ``net_param`` for ``phase`` (batch 1) with ``blobs`` (layer name → numpy
    arrays) loaded and shape-checked: how compacted (and BN-folded) models are checked."""
    net = Net(with_batch_size(net_param, 1), phase, source=source)
    load_net_param_blobs(net, blobs, source)
    return net
