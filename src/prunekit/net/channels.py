"""The one channel model of a built ``Net``: blob versions, channel classes and pins.

Every channel of every blob *version* (an in-place layer makes a new version of the same name) is
a node. Each layer's channel rule (declared in its own file, see prunekit/net/channel_rules.py)
says what its tops' nodes are:

* data layers (``is_data``) and STOPS (opaque, reduces): the bottoms are pinned, the tops are new
  pinned nodes;
* FILTERS (Convolution, InnerProduct): the tops are new nodes, one per filter (row); several
  bottoms (shared weights) are tied channel by channel (they share the column blocks). The rows of
  a depthwise conv each read one input channel: they *die with* it (below), without a tie, so a
  pin after the conv does not pin the channel before it;
* PASS / AFFINE: the tops are the bottom's nodes; other bottoms are tied to it
  (``couple_bottoms``) or pinned;
* COUPLES: the top is new nodes, tied to channel c of every bottom; for pruning, channel c of the
  top *dies with* channel c of the bottoms: it is dead only when it is dead in every bottom;
* CONCATENATES: the top is the bottoms' nodes end to end.

Net outputs are pinned. A *class* is a connected component of ties (one union-find); a pin pins
its whole class. The model is built once per net (:func:`channel_model`) and asked by two
queries: training-time propagation (prunekit/prune/dependency.py, ChannelGraph) and compaction
(prunekit/compact/trace.py, ChannelTrace), which adds what a channel *holds* and its own pins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunekit.net.channel_rules import (
    CHANNELWISE, CONCATENATES, COUPLES, FILTERS, READS_NOTHING, STOPS, FilterGeometry, Flow)
from prunekit.net.graph import LayerEntry, Net

__all__ = ["BlobVersion", "LayerChannels", "ChannelModel", "Pin", "channel_model", "channels_of"]


@dataclass
class BlobVersion:
    """One value of a blob name: the nodes of its channels and who reads it."""

    id: int
    name: str
    shape: tuple[int, ...]
    nodes: torch.Tensor                                           # int64 [C]
    readers: list[tuple[int, int]] = field(default_factory=list)  # (layer index, bottom slot)


@dataclass
class LayerChannels:
    """A layer with its rule and the versions it reads and writes. ``rows``: for FILTERS, the
    node of each filter; ``geometry``: a FILTERS class's matrix view (also when its instance is
    opaque, e.g. an InnerProduct with axis 2)."""

    index: int
    entry: LayerEntry
    module: torch.nn.Module
    flow: Flow | None                  # None: a data layer
    bottoms: list[int]
    tops: list[int] = field(default_factory=list)
    rows: torch.Tensor | None = None
    geometry: FilterGeometry | None = None

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass(frozen=True)
class Pin:
    """Nodes that must stay, and why; ``order`` sorts pins so the first reason of a class wins
    (layer index, then the order the layer pinned them)."""

    order: tuple[int, int]
    nodes: torch.Tensor
    reason: str


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self, n: int) -> torch.Tensor:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return torch.arange(start, start + n)

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def channels_of(shape: tuple[int, ...]) -> int:
    """Channels (axis 1) of a blob shape; a blob with fewer than two axes is one channel."""
    return int(shape[1]) if len(shape) >= 2 else 1


class ChannelModel:
    """Blob versions, layers, classes and pins of ``net`` (see the module docstring).

    ``node_class[node]``: class of a node; ``pins``: the pins in order; ``dies_with``, in net
    order: (nodes, [parts, ...]): node k is dead (all filters upstream zeroed) when node k of every
    part is (a COUPLES top and its bottoms; depthwise rows and their input channels)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.versions: list[BlobVersion] = []
        self.layers: list[LayerChannels] = []
        self.pins: list[Pin] = []
        self.dies_with: list[tuple[torch.Tensor, list[torch.Tensor]]] = []
        self._uf = _UnionFind()
        current: dict[str, int] = {}
        for index, (entry, module) in enumerate(net.named_layers()):
            bottoms = [current[b] for b in entry.bottoms]
            for slot, vid in enumerate(bottoms):
                self.versions[vid].readers.append((index, slot))
            layer = self._layer(index, entry, module, bottoms)
            self.layers.append(layer)
            self._flow(layer)
            for name, vid in zip(entry.tops, layer.tops):
                current[name] = vid
        self.current = current
        for k, name in enumerate(net.output_names):
            if name in current:
                self._pin(len(self.layers), self.versions[current[name]].nodes,
                          f"net output '{name}'", k)
        total = len(self._uf.parent)
        roots = torch.tensor([self._uf.find(i) for i in range(total)], dtype=torch.long)
        _, self.node_class = torch.unique(roots, return_inverse=True)
        self.num_classes = int(self.node_class.max()) + 1 if total else 0
        self.by_name = {layer.name: layer for layer in self.layers}

    # ------------------------------------------------------------------ queries
    @property
    def num_nodes(self) -> int:
        return len(self._uf.parent)

    def classes(self, version_id: int) -> torch.Tensor:
        """int64 [C]: class of each channel of a blob version."""
        return self.node_class[self.versions[version_id].nodes]

    def filter_layers(self) -> list[LayerChannels]:
        """Layers whose class declares FILTERS, in net order (traced or not)."""
        return [layer for layer in self.layers if layer.geometry is not None]

    def pin_reasons(self, extra: list[Pin] = ()) -> dict[int, str]:
        """class → the reason of its first pin (this model's pins plus ``extra``, by order)."""
        reasons: dict[int, str] = {}
        for pin in sorted([*self.pins, *extra], key=lambda p: p.order):
            for cls in torch.unique(self.node_class[pin.nodes]).tolist():
                reasons.setdefault(cls, pin.reason)
        return reasons

    def pinned(self, extra: list[Pin] = ()) -> torch.Tensor:
        """bool [num_classes]: classes with a pin."""
        out = torch.zeros(self.num_classes, dtype=torch.bool)
        for pin in [*self.pins, *extra]:
            out[self.node_class[pin.nodes]] = True
        return out

    # ------------------------------------------------------------------ building
    def _layer(self, index: int, entry: LayerEntry, module, bottoms: list[int]) -> LayerChannels:
        shapes = [self.versions[v].shape for v in bottoms]
        flow = None if getattr(module, "is_data", False) else module.channel_flow(shapes)
        geometry = None
        if getattr(type(module), "channel_rule", None) == FILTERS and shapes:
            geometry = module.filter_geometry(shapes[0])
        return LayerChannels(index, entry, module, flow, bottoms, geometry=geometry)

    def _pin(self, index: int, nodes: torch.Tensor, reason: str, seq: int | None = None) -> None:
        order = (index, len(self.pins) if seq is None else seq)
        self.pins.append(Pin(order, nodes, reason))

    def _tie(self, a: torch.Tensor, b: torch.Tensor) -> None:
        for x, y in zip(a.tolist(), b.tolist()):
            self._uf.union(x, y)

    def _version(self, layer: LayerChannels, slot: int, nodes: torch.Tensor) -> None:
        name = layer.entry.tops[slot]
        shape = tuple(int(d) for d in self.net.blob_shapes[name])
        self.versions.append(BlobVersion(len(self.versions), name, shape, nodes))
        layer.tops.append(len(self.versions) - 1)

    def _fresh_tops(self, layer: LayerChannels, reason: str) -> None:
        for slot, top in enumerate(layer.entry.tops):
            nodes = self._uf.add(channels_of(self.net.blob_shapes[top]))
            self._pin(layer.index, nodes, reason)
            self._version(layer, slot, nodes)

    def _flow(self, layer: LayerChannels) -> None:
        name, typ, flow = layer.name, layer.entry.type, layer.flow
        bottoms = [self.versions[v].nodes for v in layer.bottoms]
        if flow is None:
            self._fresh_tops(layer, f"data from '{name}'")
        elif flow.kind in STOPS:
            for nodes in bottoms:
                self._pin(layer.index, nodes, f"read by '{name}' ({typ}){flow.why}")
            self._fresh_tops(layer, f"made by '{name}' ({typ}), not traced through")
        elif flow.kind == FILTERS:
            rows = self._uf.add(layer.geometry.num_rows)
            layer.rows = rows
            for nodes in bottoms[1:]:
                self._tie(bottoms[0], nodes)
            if flow.rows_per_input:
                self.dies_with.append((rows, [bottoms[0].repeat_interleave(flow.rows_per_input)]))
            for slot in range(len(layer.entry.tops)):
                self._version(layer, slot, rows)
        elif flow.kind in CHANNELWISE:
            for nodes in bottoms[1:]:
                if flow.couple_bottoms:
                    self._tie(bottoms[0], nodes)
                else:
                    self._pin(layer.index, nodes, f"read by '{name}' ({typ})")
            for slot in range(len(layer.entry.tops)):
                self._version(layer, slot, bottoms[0])
        elif flow.kind == COUPLES:
            top = self._uf.add(len(bottoms[0]))
            for nodes in bottoms:
                self._tie(top, nodes)
            self.dies_with.append((top, bottoms))
            self._version(layer, 0, top)
        elif flow.kind == CONCATENATES:
            self._version(layer, 0, torch.cat(bottoms))
        elif flow.kind != READS_NOTHING:
            raise AssertionError(f"unhandled channel rule {flow.kind!r}")


def channel_model(net: Net) -> ChannelModel:
    """The channel model of ``net``, built once and kept on it (the structure does not depend
    on weights)."""
    model = net.__dict__.get("_channel_model")
    if model is None:
        model = ChannelModel(net)
        net.__dict__["_channel_model"] = model
    return model
