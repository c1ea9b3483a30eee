"""Channel dependency graph of a built ``Net``: who produces and who reads each channel.

Caffe_IncReg propagates structured pruning to "layer L−1 by registration index" (section 2.6),
which is wrong for branches, Eltwise, Concat and grouped convs (section 7 item 5). This module
traces the real graph instead.

Model
-----
*Registered* layers are every Convolution and InnerProduct, in net order (index L of
section 2.2). Filter (row) ``r`` of a registered layer produces channel ``r`` of its top(s).
Every channel of every blob is a node:

* **producer** nodes: the rows of a registered layer (one node per filter, shared by all its tops);
* **source** nodes: channels that cannot be pruned: net inputs / data layers, and the tops of any
  layer the trace cannot cross (below);
* **sum** nodes: one per channel of an Eltwise top (and of a Concat along a non-channel axis):
  channel ``c`` combines channel ``c`` of every bottom.

Channel-preserving layers (ReLU, PReLU, Sigmoid, TanH, ELU, Dropout, BatchNorm, Scale, Bias,
Pooling, Split, LRN ``WITHIN_CHANNEL``, and a few element-wise types not yet in the registry) pass
the nodes through unchanged; in-place tops are tracked as blob versions. A Concat along axis 1 lays
its bottoms' channels end to end (channel ``c`` comes from exactly one bottom, at an offset).
Everything else **stops** the trace: its bottoms count as read by something that cannot be masked
(the channel can never be removed) and its tops are source nodes. That includes Flatten, Reshape,
Slice, Deconvolution, ColumnConvolution (compact's column form: its input channels are pinned and
its filters are not pruned further), Softmax, losses, Accuracy, the second bottom of a two-bottom
Scale/Bias, an InnerProduct with ``axis != 1``, and **LRN ACROSS_CHANNELS**: a zero channel stays
zero through it, but physically removing a channel shifts its neighbours' normalisation windows, so
``compact`` could not reproduce the masked net. Net outputs (blobs nobody reads) are pinned the
same way. Silence reads nothing.

*Consumers* are registered layers reading a channel: channel ``c`` of a conv's input is column
block ``(c mod C/g)·K … +K`` (K = kh·kw) in group ``c // (C/g)``; of an IP's input (axis 1,
C×H×W bottom) columns ``c·HW … +HW``. A conv with several bottoms (shared weights) couples
them channel by channel: its column block ``c`` reads channel ``c`` of every bottom.

Two queries
-----------
* **Col unit** — ``dead_input_channels``: a producer filter may be zeroed only when its channel is
  unused. Eltwise makes this a whole *class* (connected component through sum nodes: a ResNet
  stage's identity path): filter ``c`` of any producer in the class is zeroed only when every
  consumer of every blob of the class has pruned all columns of its channel, nothing pins the
  class (data, stop, output), and **every** producer of the class accepts
  (``IF_update_row_col``); then all of them are returned together.
* **Row unit** — ``consumer_columns_of_pruned_rows``: a blob channel is dead when all producer
  filters upstream of it are pruned (a sum node when all its inputs are dead; a source node
  never). Consumers reading a dead channel lose its columns. After ``res2a = branch1 + branch2c``
  the channel of ``res2a`` dies only when both rows are pruned; ``res2b`` further needs
  ``res2b_branch2c``'s row.

``IF_update_row_col: false`` on a layer means "neighbours do not prune me": it refuses rows in
the Col unit and columns in the Row unit. The queries read it from the layer's ``prune_param``;
an ``accept`` dict overrides it per layer (the solver-level flag is the caller's business).
Unlike Caffe_IncReg, the last conv and the first FC are not special-cased: the graph decides (the
last FC's outputs go to a loss, which pins them).

Known limitations
-----------------
* **A zeroed filter is not a zero channel** when a BatchNorm/Scale/Bias (or Sigmoid, Power shift,
  …) follows it: the channel becomes the constant ``β − γ·μ/σ`` (+ bias), section 7 item 6.
  "Dead" here means "all upstream filters zeroed". The Row unit still masks the consumer's
  columns (training adapts to the lost constant); the physical ``compact`` step must fold the
  constant into the consumer's bias (or it changes the outputs).
* Eltwise PROD and MAX are treated like SUM (a channel dies when all bottoms die), which is
  conservative for PROD.
* Weights shared between layers (``param { name: … }``) are not tied together here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch

from prunekit.net.graph import Net

__all__ = ["ChannelGraph", "LayerGeometry", "ProducerSlice", "ProducerRows", "ConsumerColumns",
           "PASS_THROUGH"]

REGISTERED_TYPES = ("Convolution", "InnerProduct")
#: Layer types whose top channel c depends on bottom channel c only.
PASS_THROUGH = frozenset({
    "ReLU", "PReLU", "Sigmoid", "TanH", "ELU", "Dropout", "BatchNorm", "Scale", "Bias",
    "Pooling", "Split",
    # element-wise types of stock Caffe (not all in prunekit's registry yet)
    "AbsVal", "BNLL", "Power", "Exp", "Log", "Threshold", "Clip", "Swish", "GELU",
})

_PRODUCER, _SOURCE, _SUM = 0, 1, 2


class ProducerSlice(NamedTuple):
    """Where channels of a layer's input come from.

    ``layer`` produced ``num_channels`` channels that land at ``channel_offset`` of the input.
    ``kind``: ``"param"`` (a registered Conv/IP: a filter is a channel), ``"input"`` (a data
    layer: not prunable) or ``"stop"`` (a layer the trace cannot cross). ``path``: the layers in
    between, in forward order (an Eltwise name in it means the channels are coupled with the
    other slices at the same offset).
    """

    layer: str
    channel_offset: int
    num_channels: int
    kind: str
    path: tuple[str, ...]


class ProducerRows(NamedTuple):
    """Rows (filters) of a registered producer, int64 indices, sorted."""

    layer: str
    rows: torch.Tensor


class ConsumerColumns(NamedTuple):
    """Columns of a registered consumer: ``columns`` int64 column indices within a group's
    slice; ``groups`` the group each one belongs to (same length), or None when the consumer has
    a single group (IP, group-1 conv)."""

    layer: str
    columns: torch.Tensor
    groups: torch.Tensor | None

    def mask(self, num_cols: int, num_groups: int = 1) -> torch.Tensor:
        """bool ``[num_cols]`` (single group) or ``[num_groups, num_cols]``: True = column hit."""
        if self.groups is None and num_groups == 1:
            m = torch.zeros(num_cols, dtype=torch.bool)
            m[self.columns] = True
            return m
        m = torch.zeros(num_groups, num_cols, dtype=torch.bool)
        groups = self.groups if self.groups is not None else torch.zeros_like(self.columns)
        m[groups, self.columns] = True
        return m


@dataclass(frozen=True)
class LayerGeometry:
    """Matrix geometry of a registered layer, as the graph sees it.

    ``in_channels`` C of its (first) bottom, ``group`` g, ``cols_per_channel`` K = kh·kw for a
    conv, H·W of the bottom for an IP; ``num_cols`` = C/g·K. ``channel_aware`` is False for an
    IP with ``axis != 1`` (its input channels are not columns: treated as a stop).
    """

    name: str
    type: str
    index: int
    num_rows: int
    num_cols: int
    group: int
    in_channels: int
    cols_per_channel: int
    channel_aware: bool


@dataclass
class _Blob:
    nodes: torch.Tensor          # int64 [C]: node of each channel
    sources: list[ProducerSlice]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self, n: int) -> None:
        self.parent.extend(range(len(self.parent), len(self.parent) + n))

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


def _channels(shape: tuple[int, ...]) -> int:
    return int(shape[1]) if len(shape) >= 2 else 1


class ChannelGraph:
    """The channel dependency graph of ``net`` (see the module docstring)."""

    def __init__(self, net: Net) -> None:
        self.registered: list[str] = []
        self._geometry: dict[str, LayerGeometry] = {}
        self._accept_default: dict[str, bool] = {}
        self._row_nodes: dict[str, torch.Tensor] = {}      # producer -> nodes of its rows
        self._inputs: dict[str, list[_Blob]] = {}          # consumer -> blob per bottom
        self._sum_ops: list[tuple[int, int, list[torch.Tensor]]] = []
        self._couplings: list[list[torch.Tensor]] = []     # channel-wise aligned node arrays
        self._kind: list[int] = []
        self._uf = _UnionFind()
        pinned: list[torch.Tensor] = []
        current: dict[str, _Blob] = {}

        for entry, module in net.named_layers():
            bottoms = [current[b] for b in entry.bottoms]
            shapes_in = [net.blob_shapes[b] for b in entry.bottoms]
            tops = self._trace_layer(net, entry, module, bottoms, shapes_in, pinned)
            for name, blob in zip(entry.tops, tops):
                current[name] = blob
        for name in net.output_names:
            if name in current:
                pinned.append(current[name].nodes)

        # classes = connected components (sum nodes united with their inputs, the bottoms of a
        # multi-bottom conv with each other: they share its column blocks)
        for start, count, parts in self._sum_ops:
            self._couplings.append([torch.arange(start, start + count)] + parts)
        for parts in self._couplings:
            first = parts[0].tolist()
            for part in parts[1:]:
                for a, b in zip(first, part.tolist()):
                    self._uf.union(a, b)
        roots = torch.tensor([self._uf.find(i) for i in range(len(self._kind))], dtype=torch.long)
        _, self._class = torch.unique(roots, return_inverse=True)
        self.num_classes = int(self._class.max().item()) + 1 if len(roots) else 0
        kind = torch.tensor(self._kind, dtype=torch.int8)
        self._pinned = torch.zeros(self.num_classes, dtype=torch.bool)
        self._pinned[self._class[kind == _SOURCE]] = True
        for nodes in pinned:
            self._pinned[self._class[nodes]] = True
        self._row_class = {p: self._class[n] for p, n in self._row_nodes.items()}

    # ------------------------------------------------------------------ building
    def _new_nodes(self, n: int, kind: int) -> torch.Tensor:
        start = len(self._kind)
        self._kind.extend([kind] * n)
        self._uf.add(n)
        return torch.arange(start, start + n)

    def _source(self, layer: str, shape: tuple[int, ...], kind: str) -> _Blob:
        c = _channels(shape)
        return _Blob(self._new_nodes(c, _SOURCE), [ProducerSlice(layer, 0, c, kind, ())])

    def _sum(self, layer: str, bottoms: list[_Blob]) -> _Blob:
        c = len(bottoms[0].nodes)
        nodes = self._new_nodes(c, _SUM)
        self._sum_ops.append((int(nodes[0]) if c else 0, c, [b.nodes for b in bottoms]))
        sources = [s._replace(path=s.path + (layer,)) for b in bottoms for s in b.sources]
        return _Blob(nodes, sources)

    def _trace_layer(self, net, entry, module, bottoms, shapes_in, pinned) -> list[_Blob]:
        name, typ = entry.name, entry.type
        shapes_out = [net.blob_shapes[t] for t in entry.tops]
        if getattr(module, "is_data", False):
            return [self._source(name, s, "input") for s in shapes_out]
        if typ in REGISTERED_TYPES:
            return self._trace_registered(entry, module, bottoms, shapes_in, shapes_out, pinned)
        if typ == "Silence":
            return []
        if typ in PASS_THROUGH or (typ == "LRN" and not module.across):
            if typ in ("Scale", "Bias") and len(bottoms) > 1:
                pinned.extend(b.nodes for b in bottoms[1:])
            b = bottoms[0]
            return [_Blob(b.nodes, [s._replace(path=s.path + (name,)) for s in b.sources])
                    for _ in shapes_out]
        if typ == "Eltwise":
            return [self._sum(name, bottoms)]
        if typ == "Concat":
            if module.axis != 1:
                return [self._sum(name, bottoms)]
            sources, offset = [], 0
            for b in bottoms:
                sources += [s._replace(channel_offset=s.channel_offset + offset,
                                       path=s.path + (name,)) for s in b.sources]
                offset += len(b.nodes)
            return [_Blob(torch.cat([b.nodes for b in bottoms]), sources)]
        # anything else: the channels it reads are pinned, its tops are new sources
        pinned.extend(b.nodes for b in bottoms)
        return [self._source(name, s, "stop") for s in shapes_out]

    def _trace_registered(self, entry, module, bottoms, shapes_in, shapes_out, pinned):
        name = entry.name
        w = module.weight
        if entry.type == "Convolution":
            group, n = int(module.group), int(w.shape[0])
            per_channel = math.prod(w.shape[2:])
            aware = True
        else:
            n = int(w.shape[1] if module.transpose else w.shape[0])
            group = 1
            shape = shapes_in[0]
            aware = module.axis == 1 and len(shape) >= 2
            per_channel = math.prod(shape[2:]) if aware else 1
        in_ch = _channels(shapes_in[0])
        num_cols = (in_ch // group) * per_channel if aware else int(module.num_input)
        pp = entry.param.prune_param if entry.param.HasField("prune_param") else None
        self._accept_default[name] = bool(pp.IF_update_row_col) if pp is not None else True
        self._geometry[name] = LayerGeometry(name, entry.type, len(self.registered), n,
                                             num_cols, group, in_ch, per_channel, aware)
        self.registered.append(name)
        if not aware:
            pinned.extend(b.nodes for b in bottoms)
            return [self._source(name, s, "stop") for s in shapes_out]
        self._inputs[name] = bottoms
        if len(bottoms) > 1:
            self._couplings.append([b.nodes for b in bottoms])
        rows = self._new_nodes(n, _PRODUCER)
        self._row_nodes[name] = rows
        return [_Blob(rows, [ProducerSlice(name, 0, n, "param", ())]) for _ in shapes_out]

    # ------------------------------------------------------------------ structure
    def geometry(self, layer: str) -> LayerGeometry:
        """Matrix geometry of registered ``layer``."""
        return self._geometry[layer]

    def accepts(self, layer: str, accept: Mapping[str, bool] | None = None) -> bool:
        """``accept[layer]`` if given, else the layer's ``prune_param.IF_update_row_col``."""
        if accept is not None and layer in accept:
            return bool(accept[layer])
        return self._accept_default[layer]

    def producers_of_input(self, layer: str, bottom: int = 0) -> list[ProducerSlice]:
        """Where the channels of registered ``layer``'s ``bottom`` come from."""
        if layer not in self._inputs:
            if layer not in self._geometry:
                raise KeyError(f"'{layer}' is not a registered Convolution/InnerProduct layer")
            return []
        return list(self._inputs[layer][bottom].sources)

    def consumers_of_output(self, producer: str) -> list[tuple[str, int, tuple[str, ...]]]:
        """(registered consumer, channel offset of ``producer``'s channel 0 in its input, path)."""
        out = []
        for consumer, blobs in self._inputs.items():
            for blob in blobs:
                out += [(consumer, s.channel_offset, s.path) for s in blob.sources
                        if s.layer == producer and s.kind == "param"]
        return out

    def removable_rows(self, layer: str) -> torch.Tensor:
        """bool [num_rows]: filters whose channel is not pinned (data, stop, net output)."""
        if layer not in self._row_class:
            return torch.zeros(self._geometry[layer].num_rows, dtype=torch.bool)
        return ~self._pinned[self._row_class[layer]]

    def coupled_producers(self, layer: str) -> list[str]:
        """Registered producers whose filter r is tied to ``layer``'s filter r (the same
        channel class, e.g. every conv summed by one Eltwise chain), ``layer`` included."""
        mine = self._row_class.get(layer)
        if mine is None:
            return [layer]
        return [p for p in self.registered
                if p in self._row_class and torch.equal(self._row_class[p], mine)]

    # ------------------------------------------------------------------ Col unit
    def _dropped_channels(self, layer: str, pruned_cols) -> torch.Tensor:
        """bool [C_in]: every column of input channel c pruned (in c's group)."""
        geo = self._geometry[layer]
        p = torch.as_tensor(pruned_cols).bool().cpu()
        cpg = geo.in_channels // geo.group
        g = 1 if p.dim() == 1 else int(p.shape[0])
        if p.numel() != g * geo.num_cols or g not in (1, geo.group):
            raise ValueError(f"pruned columns of '{layer}' have shape {tuple(p.shape)}; expected "
                             f"[{geo.num_cols}] or [{geo.group}, {geo.num_cols}]")
        dropped = p.reshape(g, cpg, geo.cols_per_channel).all(-1)
        return dropped.expand(geo.group, cpg).reshape(-1)

    def _refused_classes(self, accept) -> torch.Tensor:
        refused = torch.zeros(self.num_classes, dtype=torch.bool)
        for layer, cls in self._row_class.items():
            if not self.accepts(layer, accept):
                refused[cls] = True
        return refused

    def dead_channels(self, pruned_cols_by_layer: Mapping[str, torch.Tensor],
                      accept: Mapping[str, bool] | None = None,
                      only_classes: torch.Tensor | None = None) -> list[ProducerRows]:
        """Every producer row that the Col unit may zero, given each consumer's pruned columns
        (bool ``[num_cols]`` or ``[group, num_cols]``; missing layers have none pruned)."""
        used = self._pinned | self._refused_classes(accept)
        for layer, blobs in self._inputs.items():
            cols = pruned_cols_by_layer.get(layer)
            if cols is None:
                for b in blobs:
                    used[self._class[b.nodes]] = True
                continue
            live = ~self._dropped_channels(layer, cols)
            for b in blobs:
                used[self._class[b.nodes[live]]] = True
        dead = ~used
        if only_classes is not None:
            dead &= only_classes
        out = []
        for layer in self.registered:
            cls = self._row_class.get(layer)
            if cls is None:
                continue
            rows = dead[cls].nonzero().flatten()
            if len(rows):
                out.append(ProducerRows(layer, rows))
        return out

    def dead_input_channels(self, consumer: str, pruned_cols_by_layer: Mapping[str, torch.Tensor],
                            accept: Mapping[str, bool] | None = None) -> list[ProducerRows]:
        """Col unit, after ``consumer`` pruned columns: producer rows feeding ``consumer`` whose
        channel no consumer of its class reads any more and whose class's producers all accept.
        Every coupled producer of such a class is returned (they go together)."""
        mine = torch.zeros(self.num_classes, dtype=torch.bool)
        for b in self._inputs.get(consumer, []):
            mine[self._class[b.nodes]] = True
        return self.dead_channels(pruned_cols_by_layer, accept, only_classes=mine)

    # ------------------------------------------------------------------ Row unit
    def _dead_nodes(self, pruned_rows_by_layer: Mapping[str, object]) -> torch.Tensor:
        dead = torch.zeros(len(self._kind), dtype=torch.bool)
        for layer, rows in pruned_rows_by_layer.items():
            nodes = self._row_nodes.get(layer)
            if nodes is None or rows is None:
                continue
            dead[nodes[_row_index(rows, len(nodes))]] = True
        for start, count, parts in self._sum_ops:
            d = dead[parts[0]].clone()
            for part in parts[1:]:
                d &= dead[part]
            dead[start:start + count] = d
        return dead

    def consumer_columns_of_pruned_rows(
        self, producer: str, rows, pruned_rows_by_layer: Mapping[str, object] | None = None,
        accept: Mapping[str, bool] | None = None,
    ) -> list[ConsumerColumns]:
        """Row unit: columns of registered consumers that read channels killed by ``producer``'s
        pruned ``rows`` (bool ``[num_rows]`` or indices). Through an Eltwise a channel dies only
        when every coupled producer pruned that row: pass the other layers' pruned rows in
        ``pruned_rows_by_layer``. Consumers that do not accept (``IF_update_row_col``) are
        skipped."""
        nodes = self._row_nodes.get(producer)
        if nodes is None:
            return []
        idx = _row_index(rows, len(nodes))
        state = dict(pruned_rows_by_layer or {})
        if producer in state and state[producer] is not None:
            mine = torch.zeros(len(nodes), dtype=torch.bool)
            mine[_row_index(state[producer], len(nodes))] = True
            mine[idx] = True
            state[producer] = mine
        else:
            state[producer] = idx
        dead = self._dead_nodes(state)
        affected = torch.zeros(self.num_classes, dtype=torch.bool)
        affected[self._class[nodes[idx]]] = True
        out = []
        for layer, blobs in self._inputs.items():
            if not self.accepts(layer, accept):
                continue
            hit = None
            for b in blobs:
                d = dead[b.nodes] & affected[self._class[b.nodes]]
                hit = d if hit is None else hit & d
            channels = hit.nonzero().flatten()
            if not len(channels):
                continue
            geo = self._geometry[layer]
            cpg = geo.in_channels // geo.group
            k = geo.cols_per_channel
            cols = ((channels % cpg)[:, None] * k + torch.arange(k)).flatten()
            groups = None
            if geo.group > 1:
                groups = (channels // cpg).repeat_interleave(k)
            out.append(ConsumerColumns(layer, cols, groups))
        return out


def _row_index(rows, n: int) -> torch.Tensor:
    """int64 indices from a bool [n] mask or an index sequence/tensor."""
    t = torch.as_tensor(rows)
    if t.dtype == torch.bool:
        if t.shape != (n,):
            raise ValueError(f"row mask of shape {tuple(t.shape)}, expected [{n}]")
        return t.nonzero().flatten()
    return t.long().reshape(-1)
