"""What every channel of every blob holds in a zero-masked net, and which channels are tied.

``compact`` may remove a channel only when that cannot change the net's outputs. It needs two
facts per channel that the pruning-time :class:`prunekit.prune.dependency.ChannelGraph` does not
keep (it answers "is this channel unused?", not "what does it hold?"):

* its **value**, per blob *version* (an in-place layer makes a new version of the same name):
  *live* (depends on the input) or an input-independent **constant** ``c``, equal at every position
  of every image. A filter whose weights on live channels are all zero makes ``c = bias + Σ c_in ·
  Σ kernel`` (a zeroed filter: ``c = bias``); ReLU, BatchNorm, Scale, ... map ``c`` to ``f(c)``
  (after a zeroed filter, BatchNorm + Scale give ``β − γ·μ/σ``, section 7 item 6 of the fork's
  notes). A padded conv or AVE pool turns a non-zero constant into a map that differs at the
  borders: that channel counts as live (it cannot be removed).
* its **class**: channels that must go together. Eltwise (and Concat along another axis) ties
  channel ``c`` of its bottoms and its top; channel-wise layers keep the channel's node. A class
  is removable when every version of every channel in it is constant and nothing *pins* it.

Pins (the channel must stay): data and net outputs, the bottoms and tops of layers the trace cannot
cross (Flatten, Reshape, Slice, Softmax, losses, Deconvolution, ColumnConvolution, a two-bottom
Scale/Bias, an InnerProduct with ``axis != 1``), the inputs of a conv with several bottoms, the
filters and inputs of layers sharing weights by ``param { name }``, and **LRN ACROSS_CHANNELS**: a
zero channel stays zero through it, but removing a channel shifts its neighbours' normalisation
windows, so the compacted net would compute something else. Blobs read by layers of the *other*
phase that have per-channel parameters or cannot be traced are pinned too, so the emitted prototxt
stays valid in both phases.

Values are float64 here; the weights stay as loaded (float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from prunekit.net.graph import LayerEntry, Net

#: Parameter-free layers whose channel c depends on bottom channel c only (values: see _pass).
PARAM_FREE = frozenset({"ReLU", "Sigmoid", "TanH", "ELU", "Dropout", "Pooling", "Split", "LRN"})
#: Pass-through layers with one parameter per channel, sliced with the channels.
PER_CHANNEL = frozenset({"BatchNorm", "Scale", "Bias", "PReLU"})
#: Layer types of another phase that never need a pin (channel-wise, no parameters).
HARMLESS_ELSEWHERE = frozenset({"ReLU", "Sigmoid", "TanH", "ELU", "Dropout", "Pooling", "Split",
                                "Silence"})

_POOL_MAX, _POOL_AVE = 0, 1
_ELT_PROD, _ELT_SUM, _ELT_MAX = 0, 1, 2


@dataclass
class Version:
    """One value of a blob name: its channels' nodes, liveness and constants."""

    id: int
    name: str
    shape: tuple[int, ...]
    nodes: torch.Tensor              # int64 [C]: channel node ids
    live: torch.Tensor               # bool [C]: depends on the input
    value: torch.Tensor              # float64 [C]: the constant where not live, 0 where live
    readers: list[tuple[int, int]] = field(default_factory=list)  # (layer index, bottom slot)


@dataclass
class TracedLayer:
    """A layer of the net with the blob versions it reads and writes.

    ``kind``: "data", "conv", "ip" (weighted, channel-aware), "channelwise" (PARAM_FREE or
    PER_CHANNEL: top channel c = f(bottom channel c)), "eltwise", "concat", "silence" or "stop".
    """

    index: int
    entry: LayerEntry
    module: torch.nn.Module
    kind: str
    bottoms: list[int]
    tops: list[int]

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class Weighted:
    """A Convolution or InnerProduct the trace crosses: its weight as a matrix of channels.

    Rows are filters (output channels); ``in_channels`` C of its bottom split in ``group`` groups
    of C/g "local" channels. ``nonzero[n, j]`` says whether row n has any non-zero weight on its
    local input channel j (for an IP: on the H×W block of channel j); ``wsum[n, j]`` is the sum of
    those weights (what a constant input channel c contributes to row n: c · wsum, without
    padding). ``padded``: a conv with pad > 0 (a constant's contribution differs at the borders).
    """

    layer: TracedLayer
    rows: torch.Tensor               # int64 [N]: node of each row
    group: int
    in_channels: int
    nonzero: torch.Tensor            # bool [N, C/g]
    wsum: torch.Tensor               # float64 [N, C/g]
    padded: bool
    has_bias: bool
    shared_inputs: bool              # several bottoms (shared weights): inputs are pinned
    sink: int | None = None          # index of a BatchNorm that alone reads the top (no bias)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def num_rows(self) -> int:
        return int(self.rows.numel())

    @property
    def input(self) -> int:
        """Version id of the (first) bottom."""
        return self.layer.bottoms[0]


class _UnionFind:
    def __init__(self) -> None:
        self.parent: list[int] = []

    def add(self, n: int) -> int:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return start

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _channels(shape: tuple[int, ...]) -> int:
    return int(shape[1]) if len(shape) >= 2 else 1


class ChannelTrace:
    """Values and classes of every channel of ``net`` (see the module docstring).

    ``pinned_elsewhere``: blob names read by layers outside this phase's net that need all
    their channels (see :func:`other_phase_pins`).
    """

    def __init__(self, net: Net, pinned_elsewhere: dict[str, str] | None = None) -> None:
        self.net = net
        self.versions: list[Version] = []
        self.layers: list[TracedLayer] = []
        self.weighted: dict[str, Weighted] = {}
        self._uf = _UnionFind()
        self._pins: list[tuple[torch.Tensor, str]] = []
        self._score_parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # (nodes, L1)
        current: dict[str, int] = {}
        for index, (entry, module) in enumerate(net.named_layers()):
            bottoms = [current[b] for b in entry.bottoms]
            for slot, vid in enumerate(bottoms):
                self.versions[vid].readers.append((index, slot))
            layer = TracedLayer(index, entry, module, "", bottoms, [])
            self.layers.append(layer)
            self._trace(layer)
            for name, vid in zip(entry.tops, layer.tops):
                current[name] = vid
        for name in net.output_names:
            if name in current:
                self._pin(self.versions[current[name]].nodes, f"net output '{name}'")
        for version in self.versions:
            reason = (pinned_elsewhere or {}).get(version.name)
            if reason:
                self._pin(version.nodes, reason)
        self._find_sinks(pinned_elsewhere or {})
        self._finish_classes()

    # ------------------------------------------------------------------ results
    def classes(self, version_id: int) -> torch.Tensor:
        """int64 [C]: class of each channel of a blob version."""
        return self.node_class[self.versions[version_id].nodes]

    def row_classes(self, layer: str) -> torch.Tensor:
        """int64 [N]: class of each row (filter) of a weighted layer."""
        return self.node_class[self.weighted[layer].rows]

    def layer(self, name: str) -> TracedLayer:
        """The traced layer called ``name`` (KeyError if the net has none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    # ------------------------------------------------------------------ building
    def _nodes(self, n: int) -> torch.Tensor:
        start = self._uf.add(n)
        return torch.arange(start, start + n)

    def _version(self, layer: TracedLayer, slot: int, nodes, live, value) -> int:
        name = layer.entry.tops[slot]
        shape = tuple(int(d) for d in self.net.blob_shapes[name])
        vid = len(self.versions)
        self.versions.append(Version(vid, name, shape, nodes, live, value.double()))
        layer.tops.append(vid)
        return vid

    def _pin(self, nodes: torch.Tensor, reason: str) -> None:
        self._pins.append((nodes, reason))

    def _couple(self, a: torch.Tensor, b: torch.Tensor) -> None:
        for x, y in zip(a.tolist(), b.tolist()):
            self._uf.union(x, y)

    def _fresh(self, layer: TracedLayer, reason: str) -> None:
        """Tops with new live, pinned channels (data, or a layer the trace cannot cross)."""
        for slot, top in enumerate(layer.entry.tops):
            c = _channels(self.net.blob_shapes[top])
            nodes = self._nodes(c)
            self._pin(nodes, reason)
            self._version(layer, slot, nodes, torch.ones(c, dtype=torch.bool),
                          torch.zeros(c, dtype=torch.float64))

    def _stop(self, layer: TracedLayer, why: str) -> None:
        where = f"read by '{layer.name}' ({layer.entry.type}){why}"
        for vid in layer.bottoms:
            self._pin(self.versions[vid].nodes, where)
        layer.kind = "stop"
        self._fresh(layer, f"made by '{layer.name}' ({layer.entry.type}), not traced through")

    def _trace(self, layer: TracedLayer) -> None:
        typ, module = layer.entry.type, layer.module
        bottoms = [self.versions[v] for v in layer.bottoms]
        if getattr(module, "is_data", False):
            layer.kind = "data"
            self._fresh(layer, f"data from '{layer.name}'")
        elif typ == "Convolution":
            self._trace_conv(layer, bottoms)
        elif typ == "InnerProduct":
            self._trace_ip(layer, bottoms)
        elif typ == "Silence":
            layer.kind = "silence"
        elif typ == "Eltwise":
            self._trace_eltwise(layer, bottoms)
        elif typ == "Concat":
            self._trace_concat(layer, bottoms)
        elif typ == "ColumnConvolution":
            self._stop(layer, ": a ColumnConvolution (compact's column form) is not traced "
                              "through; its input channels stay and its filters are kept")
        elif typ == "LRN" and module.across:
            self._stop(layer, ": LRN ACROSS_CHANNELS normalises over neighbouring channels, so "
                              "removing one would shift its neighbours' windows")
        elif typ in PARAM_FREE or typ in PER_CHANNEL:
            result = _pass(typ, module, bottoms[0]) if len(bottoms) == 1 else None
            if result is None:
                self._stop(layer, "")
                return
            layer.kind = "channelwise"
            live, value = result
            for slot in range(len(layer.entry.tops)):
                self._version(layer, slot, bottoms[0].nodes, live, value)
        else:
            self._stop(layer, "")

    def _trace_conv(self, layer: TracedLayer, bottoms: list[Version]) -> None:
        module = layer.module
        w = module.weight.detach()
        n, cg = int(w.shape[0]), int(w.shape[1])
        group = int(module.group)
        flat = w.reshape(n, cg, -1)
        l1 = flat.abs().sum(-1)                                     # [N, C/g]
        nonzero = l1 > 0
        wsum = flat.sum(-1, dtype=torch.float64)
        padded = any(p > 0 for p in module.geometry.pad)
        bias = _bias(module, n)
        # local input channel j of row r is channel (r // (N/g)) * C/g + j of the bottom
        index = (torch.arange(n) // (n // group))[:, None] * cg + torch.arange(cg)[None, :]
        rows = self._nodes(n)
        layer.kind = "conv"
        shared = len(bottoms) > 1
        for slot, bottom in enumerate(bottoms):
            live_in = bottom.live[index]
            c_in = torch.where(live_in, 0.0, bottom.value[index])
            live = (live_in & nonzero).any(1)
            if padded:  # a constant's contribution is not constant where the kernel hits padding
                live |= ((c_in != 0) & nonzero).any(1)
            value = torch.where(live, 0.0, bias + (wsum * c_in).sum(1))
            self._version(layer, slot, rows, live, value)
            if shared:
                self._pin(bottom.nodes, f"read by '{layer.name}' (a Convolution with several "
                                        "bottoms sharing its weights)")
        in_l1 = torch.zeros(_channels(bottoms[0].shape), dtype=torch.float64)
        in_l1.index_add_(0, index.reshape(-1), l1.double().reshape(-1))
        self._score_parts += [(rows, l1.double().sum(1)), (bottoms[0].nodes, in_l1)]
        self.weighted[layer.name] = Weighted(layer, rows, group, _channels(bottoms[0].shape),
                                             nonzero, wsum, padded, bool(module.bias_term), shared)
        self._pin_shared_params(layer, rows, bottoms)

    def _trace_ip(self, layer: TracedLayer, bottoms: list[Version]) -> None:
        module = layer.module
        bottom = bottoms[0]
        if module.axis != 1 or len(bottom.shape) < 2:
            self._stop(layer, f": InnerProduct with axis {module.axis} (only axis 1 is traced)")
            return
        w = module.weight.detach()
        w = w.t() if module.transpose else w                       # [N, C·H·W]
        n, c = int(w.shape[0]), _channels(bottom.shape)
        blocks = w.reshape(n, c, -1)
        l1 = blocks.abs().sum(-1)                                   # [N, C], float32 (fc6: 400 MB)
        nonzero = l1 > 0
        wsum = blocks.sum(-1, dtype=torch.float64)
        bias = _bias(module, n)
        live = (bottom.live[None, :] & nonzero).any(1)
        c_in = torch.where(bottom.live, 0.0, bottom.value)
        value = torch.where(live, 0.0, bias + wsum @ c_in)
        rows = self._nodes(n)
        layer.kind = "ip"
        self._version(layer, 0, rows, live, value)
        self._score_parts += [(rows, l1.double().sum(1)), (bottom.nodes, l1.double().sum(0))]
        self.weighted[layer.name] = Weighted(layer, rows, 1, c, nonzero, wsum, False,
                                             bool(module.bias_term), False)
        self._pin_shared_params(layer, rows, bottoms)

    def _pin_shared_params(self, layer: TracedLayer, rows: torch.Tensor,
                           bottoms: list[Version]) -> None:
        """Weights shared by name (``param { name: ... }``) must keep one shape in every layer
        that uses them: such a layer keeps all its filters and input channels."""
        names = [spec.name for spec in layer.entry.param.param if spec.name]
        if names:
            reason = f"'{layer.name}' shares its weights (param name '{names[0]}')"
            self._pin(rows, reason)
            for b in bottoms:
                self._pin(b.nodes, reason)

    def _trace_eltwise(self, layer: TracedLayer, bottoms: list[Version]) -> None:
        c = len(bottoms[0].nodes)
        nodes = self._nodes(c)
        for b in bottoms:
            self._couple(nodes, b.nodes)
        live = torch.stack([b.live for b in bottoms]).any(0)
        values = torch.stack([b.value for b in bottoms])
        op = layer.module.operation
        if op == _ELT_SUM:
            coeff = torch.tensor(layer.module.coeff, dtype=torch.float64)
            value = (coeff[:, None] * values).sum(0)
        elif op == _ELT_PROD:
            value = values.prod(0)
        else:
            value = values.max(0).values
        layer.kind = "eltwise"
        self._version(layer, 0, nodes, live, torch.where(live, 0.0, value))

    def _trace_concat(self, layer: TracedLayer, bottoms: list[Version]) -> None:
        layer.kind = "concat"
        if layer.module.axis == 1:
            self._version(layer, 0, torch.cat([b.nodes for b in bottoms]),
                          torch.cat([b.live for b in bottoms]),
                          torch.cat([b.value for b in bottoms]))
            return
        # along another axis channel c of the top is made of channel c of every bottom: tied,
        # and constant only where all bottoms hold the same constant
        c = len(bottoms[0].nodes)
        nodes = self._nodes(c)
        for b in bottoms:
            self._couple(nodes, b.nodes)
        values = torch.stack([b.value for b in bottoms])
        live = torch.stack([b.live for b in bottoms]).any(0) | (values != values[0]).any(0)
        self._version(layer, 0, nodes, live, torch.where(live, 0.0, values[0]))

    def _find_sinks(self, pinned_elsewhere: dict[str, str]) -> None:
        """A weighted layer without a bias whose only reader is a BatchNorm (with running
        statistics) can hand a constant to it: BatchNorm(y + d) with mean μ equals BatchNorm(y)
        with mean μ − d."""
        for w in self.weighted.values():
            if w.has_bias or len(w.layer.tops) != 1:
                continue
            top = self.versions[w.layer.tops[0]]
            if len(top.readers) != 1 or top.name in pinned_elsewhere:
                continue
            reader = self.layers[top.readers[0][0]]
            if reader.entry.type == "BatchNorm" and float(reader.module.moving_average_factor) != 0:
                w.sink = reader.index

    def _finish_classes(self) -> None:
        total = len(self._uf.parent)
        roots = torch.tensor([self._uf.find(i) for i in range(total)], dtype=torch.long)
        _, self.node_class = torch.unique(roots, return_inverse=True)
        self.num_classes = int(self.node_class.max()) + 1 if total else 0
        self.class_live = torch.zeros(self.num_classes, dtype=torch.bool)
        for v in self.versions:
            self.class_live[self.node_class[v.nodes[v.live]]] = True
        self.pin_reason: dict[int, str] = {}
        for nodes, reason in self._pins:
            for cls in torch.unique(self.node_class[nodes]).tolist():
                self.pin_reason.setdefault(cls, reason)
        self.pinned = torch.zeros(self.num_classes, dtype=torch.bool)
        if self.pin_reason:
            self.pinned[list(self.pin_reason)] = True
        self.score = torch.zeros(self.num_classes, dtype=torch.float64)
        for nodes, l1 in self._score_parts:
            self.score.index_add_(0, self.node_class[nodes], l1)


def _bias(module, n: int) -> torch.Tensor:
    """float64 [N]: the layer's bias, or zeros without one."""
    if module.bias_term:
        return module.bias.detach().double()
    return torch.zeros(n, dtype=torch.float64)


def _pass(typ: str, module, bottom: Version) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(live, value) of a channel-wise layer's top, or None when it cannot be traced."""
    live, v = bottom.live.clone(), bottom.value
    if typ in ("Split",):
        return live, v
    if typ == "Dropout":
        if module.training and module.ratio > 0:
            live |= v != 0   # random zeros: a constant does not stay constant
        return live, v
    if typ == "ReLU":
        return live, torch.where(v > 0, v, v * module.negative_slope)
    if typ == "PReLU":
        slope = module.slope.detach().double()
        slope = slope.expand_as(v) if module.channel_shared else slope
        return live, torch.where(v > 0, v, v * slope)
    if typ == "Sigmoid":
        return live, torch.sigmoid(v)
    if typ == "TanH":
        return live, torch.tanh(v)
    if typ == "ELU":
        return live, torch.where(v > 0, v, module.alpha * torch.expm1(v))
    if typ == "Pooling":
        keeps_constants = (module.pool == _POOL_MAX or module.global_pooling
                           or (module.pool == _POOL_AVE and not any(module.pad)))
        if not keeps_constants:  # padded AVE (borders) or STOCHASTIC
            live |= v != 0
        return live, v
    if typ == "LRN":  # WITHIN_CHANNEL: its zero-padded window changes constants at the borders
        live |= v != 0
        return live, torch.where(live, 0.0, v)
    if typ == "BatchNorm":
        if not module.use_global_stats:
            return live, torch.zeros_like(v)   # a constant channel normalises to 0
        mean, var = (t.double() for t in module.global_stats())
        return live, (v - mean) / torch.sqrt(var + module.eps)
    if typ in ("Scale", "Bias"):
        return _affine(typ, module, live, v)
    return None


def _affine(typ: str, module, live: torch.Tensor, v: torch.Tensor):
    """Scale (x·s + b) and Bias (x + b) with a learnable operand: a scalar, or one value (or
    one map) per channel along axis 1. Anything else is not traced (None)."""
    if not module.learnable:
        return None
    c = len(v)

    def per_channel(t: torch.Tensor):
        """(the operand's first value per channel, whether it is the same everywhere)."""
        t = t.detach().double()
        if t.dim() == 0:
            return t.expand(c), torch.ones(c, dtype=torch.bool)
        if module.axis != 1 or int(t.shape[0]) != c:
            return None
        flat = t.reshape(c, -1)
        return flat[:, 0], (flat == flat[:, :1]).all(1)

    out = v
    if typ == "Scale":
        scale = per_channel(module.scale)
        if scale is None:
            return None
        live = live | (~scale[1] & (v != 0))
        out = v * scale[0]
    if typ == "Bias" or module.bias_term:
        bias = per_channel(module.bias)
        if bias is None:
            return None
        live = live | ~bias[1]
        out = out + bias[0]
    return live, torch.where(live, 0.0, out)


def other_phase_pins(net_param, net: Net, phase_name: str) -> dict[str, str]:
    """Blob names read by layers that are not in ``net`` (other phase or stage) and that would
    break if those blobs lost channels: anything but a parameter-free channel-wise layer."""
    from prunekit.net.state_rules import layer_included

    produced = set(net.blob_shapes)
    pins: dict[str, str] = {}
    for lp in net_param.layer:
        if layer_included(lp, net.phase) or lp.type in HARMLESS_ELSEWHERE:
            continue
        for bottom in lp.bottom:
            if bottom in produced:
                pins.setdefault(bottom, f"read by '{lp.name}' ({lp.type}), a layer outside the "
                                        f"{phase_name} net")
    return pins


def spatial_size(shape: tuple[int, ...]) -> int:
    """Positions per channel (H·W) of an N×C×... blob."""
    return math.prod(shape[2:]) if len(shape) > 2 else 1
