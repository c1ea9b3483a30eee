"""What every channel of every blob holds in a zero-masked net, and which channels are tied.

``compact`` may remove a channel only when that cannot change the net's outputs. This is the
compaction query over the one channel model (prunekit/net/channels.py: blob versions, classes and
pins, built from each layer's declared channel rule). It adds what a channel **holds**, per blob
*version*: *live* (depends on the input) or an input-independent **constant** ``c``, equal at
every position of every image. A filter whose weights on live channels are all zero makes
``c = bias + Σ c_in · Σ kernel`` (a zeroed filter: ``c = bias``); a channel-wise layer maps ``c``
to what its file's ``channel_constants`` says (ReLU, BatchNorm, Scale, ...: after a zeroed filter,
BatchNorm + Scale give ``β − γ·μ/σ``). A padded conv or AVE pool turns a non-zero constant into a
map that differs at the borders: that channel counts as live (it cannot be removed).

A class (channels that must go together: an Eltwise or a squeeze-excitation Scale ties channel
``c`` of its bottoms and its top) is removable when every version of every channel in it is
constant and nothing *pins* it.

Pins (the channel must stay): the channel model's (data and net outputs; the bottoms and tops of
opaque or reducing layers — Flatten, Reshape, Slice, Softmax, losses, Deconvolution,
ColumnConvolution, an InnerProduct with ``axis != 1``, **LRN ACROSS_CHANNELS**, whose windows
would shift, and any layer type that declares no rule — with a reason naming the layer and its
type), plus compaction's own: a channel-wise layer whose constants cannot be followed (e.g. a
Scale along another axis), the inputs of a conv with several bottoms, the filters and inputs of
layers sharing weights by ``param { name }``, and blobs read by layers of the *other* phase that
have per-channel parameters or cannot be traced, so the emitted prototxt stays valid in both
phases.

Values are float64 here; the weights stay as loaded (float32).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from prunekit.net.channel_rules import (
    CHANNELWISE, CONCATENATES, COUPLES, FILTERS, READS_NOTHING, STOPS, harmless_elsewhere)
from prunekit.net.channels import ChannelModel, LayerChannels, Pin, channel_model, channels_of
from prunekit.net.graph import LayerEntry, Net

#: TracedLayer.kind of each rule (FILTERS: "conv" or "ip", from the layer's filter geometry).
_KIND = {COUPLES: "eltwise", CONCATENATES: "concat", READS_NOTHING: "silence"}


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

    ``kind``: "data", "conv", "ip" (filters, channel-aware), "channelwise" (pass-through or
    per-channel affine: top channel c = f(bottom channel c)), "eltwise" (couples its bottoms),
    "concat", "silence" or "stop".
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


class ChannelTrace:
    """Values and classes of every channel of ``net`` (see the module docstring).

    ``pinned_elsewhere``: blob names read by layers outside this phase's net that need all
    their channels (see :func:`other_phase_pins`).
    """

    def __init__(self, net: Net, pinned_elsewhere: dict[str, str] | None = None) -> None:
        self.net = net
        self.model: ChannelModel = channel_model(net)
        self.versions: list[Version] = []
        self.layers: list[TracedLayer] = []
        self.weighted: dict[str, Weighted] = {}
        self._pins: list[Pin] = []
        self._score_parts: list[tuple[torch.Tensor, torch.Tensor]] = []  # (nodes, L1)
        for core in self.model.layers:
            layer = TracedLayer(core.index, core.entry, core.module, "", list(core.bottoms),
                                list(core.tops))
            self.layers.append(layer)
            self._trace(layer, core)
        end = len(self.layers) + 1
        for version in self.versions:
            reason = (pinned_elsewhere or {}).get(version.name)
            if reason:
                self._pin(end, version.nodes, reason)
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
    def _pin(self, index: int, nodes: torch.Tensor, reason: str) -> None:
        """A pin of compaction's own, after the model's pins of the same layer."""
        self._pins.append(Pin((index, 1 << 40 | len(self._pins)), nodes, reason))

    def _live_tops(self, layer: TracedLayer) -> None:
        """Tops whose channels all depend on the input."""
        for vid in layer.tops:
            c = channels_of(self.model.versions[vid].shape)
            self._set_tops_one(vid, torch.ones(c, dtype=torch.bool),
                               torch.zeros(c, dtype=torch.float64))

    def _set_tops_one(self, vid: int, live: torch.Tensor, value: torch.Tensor) -> None:
        core = self.model.versions[vid]
        assert vid == len(self.versions)
        self.versions.append(Version(vid, core.name, core.shape, core.nodes, live, value.double(),
                                     core.readers))

    def _stop(self, layer: TracedLayer) -> None:
        """A channel-wise layer whose constants cannot be followed: pinned like an opaque one."""
        typ = layer.entry.type
        for vid in layer.bottoms:
            self._pin(layer.index, self.versions[vid].nodes, f"read by '{layer.name}' ({typ})")
        for vid in layer.tops:
            self._pin(layer.index, self.model.versions[vid].nodes,
                      f"made by '{layer.name}' ({typ}), not traced through")
        layer.kind = "stop"
        self._live_tops(layer)

    def _trace(self, layer: TracedLayer, core: LayerChannels) -> None:
        flow = core.flow
        bottoms = [self.versions[v] for v in layer.bottoms]
        if flow is None or flow.kind in STOPS:
            layer.kind = "data" if flow is None else "stop"
            self._live_tops(layer)
        elif flow.kind == FILTERS:
            if core.geometry.spatial:
                self._trace_conv(layer, core, bottoms)
            else:
                self._trace_ip(layer, core, bottoms)
        elif flow.kind in CHANNELWISE:
            if len(bottoms) > 1 and not flow.couple_bottoms:
                self._stop(layer)
                return
            result = layer.module.channel_constants([b.live for b in bottoms],
                                                    [b.value for b in bottoms])
            if result is None:
                self._stop(layer)
                return
            layer.kind = "channelwise"
            for vid in layer.tops:
                self._set_tops_one(vid, result[0], result[1])
        else:
            layer.kind = _KIND[flow.kind]
            if layer.tops:
                live, value = layer.module.channel_constants([b.live for b in bottoms],
                                                             [b.value for b in bottoms])
                self._set_tops_one(layer.tops[0], live, value)

    def _trace_conv(self, layer: TracedLayer, core: LayerChannels,
                    bottoms: list[Version]) -> None:
        module = layer.module
        w = module.weight.detach()
        n, cg = int(w.shape[0]), int(w.shape[1])
        group = core.geometry.group
        flat = w.reshape(n, cg, -1)
        l1 = flat.abs().sum(-1)                                     # [N, C/g]
        nonzero = l1 > 0
        wsum = flat.sum(-1, dtype=torch.float64)
        padded = any(p > 0 for p in module.geometry.pad)
        bias = _bias(module, n)
        # local input channel j of row r is channel (r // (N/g)) * C/g + j of the bottom
        index = (torch.arange(n) // (n // group))[:, None] * cg + torch.arange(cg)[None, :]
        rows = core.rows
        layer.kind = "conv"
        shared = len(bottoms) > 1
        for slot, bottom in enumerate(bottoms):
            live_in = bottom.live[index]
            c_in = torch.where(live_in, 0.0, bottom.value[index])
            live = (live_in & nonzero).any(1)
            if padded:  # a constant's contribution is not constant where the kernel hits padding
                live |= ((c_in != 0) & nonzero).any(1)
            value = torch.where(live, 0.0, bias + (wsum * c_in).sum(1))
            self._set_tops_one(layer.tops[slot], live, value)
            if shared:
                self._pin(layer.index, bottom.nodes,
                          f"read by '{layer.name}' (a Convolution with several bottoms sharing "
                          "its weights)")
        in_l1 = torch.zeros(channels_of(bottoms[0].shape), dtype=torch.float64)
        in_l1.index_add_(0, index.reshape(-1), l1.double().reshape(-1))
        self._score_parts += [(rows, l1.double().sum(1)), (bottoms[0].nodes, in_l1)]
        self.weighted[layer.name] = Weighted(layer, rows, group, channels_of(bottoms[0].shape),
                                             nonzero, wsum, padded, bool(module.bias_term), shared)
        self._pin_shared_params(layer, rows, bottoms)

    def _trace_ip(self, layer: TracedLayer, core: LayerChannels,
                  bottoms: list[Version]) -> None:
        module = layer.module
        bottom = bottoms[0]
        w = module.weight.detach()
        w = w.t() if module.transpose else w                       # [N, C·H·W]
        n, c = int(w.shape[0]), channels_of(bottom.shape)
        blocks = w.reshape(n, c, -1)
        l1 = blocks.abs().sum(-1)                                   # [N, C], float32 (fc6: 400 MB)
        nonzero = l1 > 0
        wsum = blocks.sum(-1, dtype=torch.float64)
        bias = _bias(module, n)
        live = (bottom.live[None, :] & nonzero).any(1)
        c_in = torch.where(bottom.live, 0.0, bottom.value)
        value = torch.where(live, 0.0, bias + wsum @ c_in)
        rows = core.rows
        layer.kind = "ip"
        for vid in layer.tops:
            self._set_tops_one(vid, live, value)
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
            self._pin(layer.index, rows, reason)
            for b in bottoms:
                self._pin(layer.index, b.nodes, reason)

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
        self.node_class = self.model.node_class
        self.num_classes = self.model.num_classes
        self.class_live = torch.zeros(self.num_classes, dtype=torch.bool)
        for v in self.versions:
            self.class_live[self.node_class[v.nodes[v.live]]] = True
        self.pin_reason: dict[int, str] = self.model.pin_reasons(self._pins)
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


def other_phase_pins(net_param, net: Net, phase_name: str) -> dict[str, str]:
    """Blob names read by layers that are not in ``net`` (other phase or stage) and that would
    break if those blobs lost channels: anything but a parameter-free channel-wise layer."""
    from prunekit.net.state_rules import layer_included

    produced = set(net.blob_shapes)
    pins: dict[str, str] = {}
    for lp in net_param.layer:
        if layer_included(lp, net.phase) or harmless_elsewhere(lp.type):
            continue
        for bottom in lp.bottom:
            if bottom in produced:
                pins.setdefault(bottom, f"read by '{lp.name}' ({lp.type}), a layer outside the "
                                        f"{phase_name} net")
    return pins


def spatial_size(shape: tuple[int, ...]) -> int:
    """Positions per channel (H·W) of an N×C×... blob."""
    return math.prod(shape[2:]) if len(shape) > 2 else 1
