"""Channel dependency graph of a built ``Net``: who produces and who reads each channel.

Caffe_IncReg propagates structured pruning to "layer L−1 by registration index", which is wrong
for branches, Eltwise, Concat and grouped convs. This module asks the real graph instead: it is a
query over the one channel model (prunekit/net/channels.py), which follows each layer's declared
channel rule (prunekit/net/channel_rules.py); it keeps no list of layer types of its own.

Model
-----
*Registered* layers are the layers whose class declares the FILTERS rule (Convolution and
InnerProduct), in net order (index L of the fork's layer registration). Filter (row) ``r`` of a
registered layer produces channel ``r`` of its top(s). Every channel of every blob is a node:

* **producer** nodes: the rows of a registered layer (one node per filter, shared by all its tops);
* **source** nodes: channels that cannot be pruned: net inputs / data layers, and the tops of any
  layer the trace cannot cross (below);
* **sum** nodes: one per channel of an Eltwise top (and of a Concat along a non-channel axis):
  channel ``c`` combines channel ``c`` of every bottom.

Channel-wise layers (pass-through and per-channel affine rules: ReLU, PReLU, Sigmoid, TanH, ELU,
Dropout, BatchNorm, Scale, Bias, Pooling, Split, LRN ``WITHIN_CHANNEL``) pass the nodes through
unchanged; in-place tops are tracked as blob versions. A two-bottom Scale/Bias whose second bottom
holds one value per channel (squeeze-excitation) ties both bottoms' channels; otherwise its second
bottom is pinned. A Concat along axis 1 lays its bottoms' channels end to end (channel ``c`` comes
from exactly one bottom, at an offset). Opaque and reducing layers **stop** the trace: their
bottoms count as read by something that cannot be masked (the channel can never be removed) and
their tops are source nodes: Flatten, Reshape, Slice, Deconvolution, ColumnConvolution (compact's
column form: its input channels are pinned and its filters are not pruned further), Softmax,
losses, Accuracy, an InnerProduct with ``axis != 1``, **LRN ACROSS_CHANNELS** (a zero channel stays
zero through it, but physically removing a channel shifts its neighbours' normalisation windows,
so ``compact`` could not reproduce the masked net) and any layer type that declares no rule. Net
outputs (blobs nobody reads) are pinned the same way. Silence reads nothing. A depthwise conv's
filters are tied to their input channel.

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
  A depthwise conv's filter is dead when the one channel it reads is (``rows_dying_with`` names
  such filters so that the Row unit prunes them too).

``IF_update_row_col: false`` on a layer means "neighbours do not prune me": it refuses rows in
the Col unit and columns in the Row unit. The queries read it from the layer's ``prune_param``;
an ``accept`` dict overrides it per layer (the solver-level flag is the caller's business).
Unlike Caffe_IncReg, the last conv and the first FC are not special-cased: the graph decides (the
last FC's outputs go to a loss, which pins them).

Known limitations
-----------------
* **A zeroed filter is not a zero channel** when a BatchNorm/Scale/Bias (or Sigmoid, Power shift,
  …) follows it: the channel becomes the constant ``β − γ·μ/σ`` (+ bias).
  "Dead" here means "all upstream filters zeroed". The Row unit still masks the consumer's
  columns (training adapts to the lost constant); the physical ``compact`` step must fold the
  constant into the consumer's bias (prunekit/compact/fold_constants.py does).
* Eltwise PROD and MAX are treated like SUM (a channel dies when all bottoms die), which is
  conservative for PROD.
* Weights shared between layers (``param { name: … }``) are not tied together here.
"""


from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import torch

from prunekit.net.channel_rules import CHANNELWISE, CONCATENATES, COUPLES, FILTERS, STOPS
from prunekit.net.channels import ChannelModel, channel_model, channels_of
from prunekit.net.graph import Net

__all__ = ["ChannelGraph", "LayerGeometry", "ProducerSlice", "ProducerRows", "ConsumerColumns"]


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


def _sources(model: ChannelModel) -> dict[int, list[ProducerSlice]]:
    """Per blob version: the producer slices its channels come from (net order walk)."""
    out: dict[int, list[ProducerSlice]] = {}

    def along(vid: int, name: str, offset: int = 0) -> list[ProducerSlice]:
        return [s._replace(channel_offset=s.channel_offset + offset, path=s.path + (name,))
                for s in out[vid]]

    for layer in model.layers:
        flow, name = layer.flow, layer.name
        for vid in layer.tops:
            c = channels_of(model.versions[vid].shape)
            if flow is None:
                out[vid] = [ProducerSlice(name, 0, c, "input", ())]
            elif flow.kind in STOPS:
                out[vid] = [ProducerSlice(name, 0, c, "stop", ())]
            elif flow.kind == FILTERS:
                out[vid] = [ProducerSlice(name, 0, len(layer.rows), "param", ())]
            elif flow.kind in CHANNELWISE:
                out[vid] = along(layer.bottoms[0], name)
            elif flow.kind == COUPLES:
                out[vid] = [s for b in layer.bottoms for s in along(b, name)]
            elif flow.kind == CONCATENATES:
                sources, offset = [], 0
                for b in layer.bottoms:
                    sources += along(b, name, offset)
                    offset += len(model.versions[b].nodes)
                out[vid] = sources
    return out


class ChannelGraph:
    """The channel dependency graph of ``net`` (see the module docstring)."""

    def __init__(self, net: Net) -> None:
        model = channel_model(net)
        self.registered: list[str] = []
        self._geometry: dict[str, LayerGeometry] = {}
        self._accept_default: dict[str, bool] = {}
        self._row_nodes: dict[str, torch.Tensor] = {}      # producer -> nodes of its rows
        self._inputs: dict[str, list[_Blob]] = {}          # consumer -> blob per bottom
        self._dies_with = model.dies_with
        depthwise = [layer for layer in model.filter_layers()
                     if layer.flow.kind == FILTERS and layer.flow.rows_per_input]
        self._followers = {layer.name: layer.rows for layer in depthwise}
        self._follow_input = {layer.name: model.versions[layer.bottoms[0]].nodes
                              .repeat_interleave(layer.flow.rows_per_input) for layer in depthwise}
        self._num_nodes = model.num_nodes
        sources = _sources(model)
        for layer in model.filter_layers():
            self._register(layer)
            if layer.flow.kind == FILTERS:
                self._row_nodes[layer.name] = layer.rows
                self._inputs[layer.name] = [_Blob(model.versions[v].nodes, sources[v])
                                            for v in layer.bottoms]
        self._class = model.node_class
        self.num_classes = model.num_classes
        self._pinned = model.pinned()
        self._row_class = {p: self._class[n] for p, n in self._row_nodes.items()}

    def _register(self, layer) -> None:
        geo, entry = layer.geometry, layer.entry
        aware = layer.flow.kind == FILTERS
        num_cols = geo.num_cols if aware else int(layer.module.weight.numel()) // geo.num_rows
        pp = entry.param.prune_param if entry.param.HasField("prune_param") else None
        self._accept_default[layer.name] = bool(pp.IF_update_row_col) if pp is not None else True
        self._geometry[layer.name] = LayerGeometry(
            layer.name, entry.type, len(self.registered), geo.num_rows, num_cols, geo.group,
            geo.in_channels, geo.cols_per_channel, aware)
        self.registered.append(layer.name)

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
        dead = torch.zeros(self._num_nodes, dtype=torch.bool)
        for layer, rows in pruned_rows_by_layer.items():
            nodes = self._row_nodes.get(layer)
            if nodes is None or rows is None:
                continue
            dead[nodes[_row_index(rows, len(nodes))]] = True
        for nodes, parts in self._dies_with:
            d = dead[parts[0]].clone()
            for part in parts[1:]:
                d &= dead[part]
            dead[nodes] |= d
        return dead

    def _with_rows(self, producer: str, rows, pruned_rows_by_layer) -> dict:
        """``pruned_rows_by_layer`` with ``rows`` of ``producer`` added."""
        n = len(self._row_nodes[producer])
        idx = _row_index(rows, n)
        state = dict(pruned_rows_by_layer or {})
        if producer in state and state[producer] is not None:
            mine = torch.zeros(n, dtype=torch.bool)
            mine[_row_index(state[producer], n)] = True
            mine[idx] = True
            state[producer] = mine
        else:
            state[producer] = idx
        return state

    def rows_dying_with(self, producer: str, rows,
                        pruned_rows_by_layer: Mapping[str, object] | None = None,
                        accept: Mapping[str, bool] | None = None) -> list[ProducerRows]:
        """Row unit: rows of depthwise convs (each filter reads one input channel) that die
        with ``producer``'s pruned ``rows`` — the channel they read is dead — and that are not
        in ``pruned_rows_by_layer`` yet; layers that do not accept are skipped."""
        if producer not in self._row_nodes or not self._followers:
            return []
        state = self._with_rows(producer, rows, pruned_rows_by_layer)
        dead = self._dead_nodes(state)
        out = []
        for layer, nodes in self._followers.items():
            if layer == producer or not self.accepts(layer, accept):
                continue
            newly = dead[nodes]
            if state.get(layer) is not None:
                newly[_row_index(state[layer], len(nodes))] = False
            if newly.any():
                out.append(ProducerRows(layer, newly.nonzero().flatten()))
        return out

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
        dead = self._dead_nodes(self._with_rows(producer, rows, pruned_rows_by_layer))
        affected = torch.zeros(self.num_classes, dtype=torch.bool)
        affected[self._class[nodes[idx]]] = True
        for layer, rows_of_layer in self._followers.items():   # net order: depthwise rows that
            reads = self._follow_input[layer]                   # die with an affected channel
            hit = dead[rows_of_layer] & affected[self._class[reads]]
            affected[self._class[rows_of_layer[hit]]] = True
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
