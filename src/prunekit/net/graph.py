"""A Caffe net as a torch module: layers in prototxt order, blobs by name, phases, in-place tops.

The NetParameter is the source of truth: this module is built from it, never edited by hand.
One submodule per Caffe layer, named after the layer, so a state_dict reads like the prototxt and
tools (pruning, FLOPs, timing) can find "conv2" by its Caffe name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from prunekit.caffe.field_policy import check_layer_fields
from prunekit.errors import PrunekitError
from prunekit.net.blob_versions import blob_versions
from prunekit.net.fuse_bn_scale import bn_scale_pairs
from prunekit.net.hooks import is_hooked
from prunekit.net.in_place import in_place_relus
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.memory import check_fits, check_shape, shape_bytes
from prunekit.net.net_checks import SETUP_ERRORS, check_single_source, in_file, refuse_code_layers
from prunekit.net.propagate_down import cut_gradients, stopped_bottoms
from prunekit.net.registry import layer_class
from prunekit.net.shapes import infer_top_shapes
from prunekit.net.state_rules import layer_included

PHASE_NAMES = {TRAIN: "TRAIN", TEST: "TEST"}


@dataclass
class LayerEntry:
    """One layer of the built net: its Caffe identity and where its module lives."""

    name: str
    type: str
    key: str
    bottoms: list[str]
    tops: list[str]
    loss_weights: list[float]
    param: object = field(repr=False)
    stopped: tuple[bool, ...] = ()  # per bottom: propagate_down false (net/propagate_down.py)


@dataclass
class BlobRef:
    """A Caffe parameter blob seen by the solver: owner layer, Caffe index, tensor and multipliers."""

    layer: str
    index: int
    tensor: torch.Tensor
    lr_mult: float
    decay_mult: float

    @property
    def learnable(self) -> bool:
        return isinstance(self.tensor, nn.Parameter) and self.lr_mult != 0


class Net(nn.Module):
    """Caffe ``Net`` for one phase.

    ``forward()`` pulls a batch from the data layers (or takes ``feed``), runs every layer and
    returns ``(loss, outputs)``: the weighted sum of loss tops and the net outputs (blobs nobody
    consumes, alphabetical as in Caffe, so "Test net output #k" numbering matches).

    Two exact shortcuts make ``forward()`` cost what a hand-written module costs; each layer's
    module, called on its own, still computes its Caffe layer. ``fuse``: a BatchNorm and the
    Scale after it run as one op (prunekit/net/fuse_bn_scale.py; ``fused_pairs`` names them).
    ``in_place``: a ReLU that is in place in the prototxt overwrites its bottom where nothing
    else reads it (prunekit/net/in_place.py; ``in_place_relus``), so, as in Caffe, a tensor
    kept from an earlier forward step may have changed; hooked layers see their own values.
    """

    def __init__(
        self,
        net_param,
        phase: int,
        *,
        level: int = 0,
        stages: Iterable[str] = (),
        source: str = "<net>",
        fuse: bool = True,
        in_place: bool = True,
    ) -> None:
        super().__init__()
        self.net_name: str = net_param.name
        self.phase = phase
        self.source = source
        self.layer_modules = nn.ModuleDict()
        self.entries: list[LayerEntry] = []
        self.blob_shapes: dict[str, tuple[int, ...]] = {}
        self.output_names: list[str] = []
        self.device = torch.device("cpu")
        self._param_owners: dict[str, torch.Tensor] = {}
        self.memory_bytes = 0  # float32 bytes of its blobs (+ diffs in TRAIN), see _count_memory
        self._memory_checked = False  # memory_bytes checked against the device it runs on
        self._build(net_param, level, tuple(stages))
        versions = blob_versions(self.entries)
        self._pairs = bn_scale_pairs(self.entries, self.layer_modules, versions) if fuse else {}
        self._relus = in_place_relus(self.entries, self.layer_modules, versions) if in_place else {}
        self.fused_pairs = [(self.entries[i].name, self.entries[j].name)
                            for i, j in self._pairs.items()]
        self.in_place_relus = [self.entries[i].name for i in self._relus]
        self.train(phase == TRAIN)

    # ------------------------------------------------------------------ building
    def _build(self, net_param, level: int, stages: tuple[str, ...]) -> None:
        layers = _legacy_input_layers(net_param)
        layers += [lp for lp in net_param.layer if layer_included(lp, self.phase, level, stages)]
        if not layers:
            raise PrunekitError(
                f"{self.source}: no layers in the {PHASE_NAMES[self.phase]} net "
                "(check the include/exclude phase rules)"
            )
        available: dict[str, None] = {}
        produced: set[str] = set()
        for lp in layers:
            where = f"{self.source}: layer '{lp.name}' ({lp.type})"
            refuse_code_layers(lp, where)
            check_single_source(lp, produced, where)
            self._add_layer(lp)
            for bottom in lp.bottom:
                available.pop(bottom, None)
            for top in lp.top:
                available[top] = None
        self.output_names = sorted(available)

    def _add_layer(self, lp) -> None:
        where = f"{self.source}: layer '{lp.name}' ({lp.type})"
        for bottom in lp.bottom:
            if bottom not in self.blob_shapes:
                raise PrunekitError(
                    f"{where}: bottom blob '{bottom}' is not produced by any earlier layer of the "
                    f"{PHASE_NAMES[self.phase]} net"
                )
        bottom_shapes = [self.blob_shapes[b] for b in lp.bottom]
        try:
            cls = layer_class(lp.type, lp.name)
            check_layer_fields(lp, where)
            module = cls(lp, bottom_shapes, self.phase)
            top_shapes = (module.top_shapes() if cls.is_data
                          else infer_top_shapes(module, bottom_shapes))
        except PrunekitError as err:  # layers name themselves; the file is named here
            raise in_file(self.source, err) from None
        except SETUP_ERRORS as err:
            raise PrunekitError(f"{where}: cannot be set up for bottom shapes "
                                f"{[list(s) for s in bottom_shapes]}: {in_file('', err)}") from None
        if len(top_shapes) != len(lp.top):
            raise PrunekitError(
                f"{where}: declares {len(lp.top)} top blob(s) but the layer produces "
                f"{len(top_shapes)}"
            )
        self._count_memory(lp, module, top_shapes, where)
        self._share_named_params(lp, module, where)
        key = self._module_key(lp.name)
        self.layer_modules[key] = module
        for top, shape in zip(lp.top, top_shapes):
            self.blob_shapes[top] = tuple(int(d) for d in shape)
        self.entries.append(
            LayerEntry(lp.name, lp.type, key, list(lp.bottom), list(lp.top),
                       _loss_weights(lp, cls, where), lp, stopped_bottoms(lp, where))
        )

    def _count_memory(self, lp, module, top_shapes, where: str) -> None:
        """Refuse a layer whose tops have a non-positive dimension, or whose tops (and, in
        TRAIN, their diffs and its weights' diffs) no longer fit in the memory left: checked
        from shapes before any forward allocates them (prunekit/net/memory.py)."""
        diffs = 2 if self.phase == TRAIN else 1
        new = 0
        for index, (top, shape) in enumerate(zip(lp.top, top_shapes)):
            check_shape(where, f"top '{top}'", shape)
            if not (index < len(lp.bottom) and lp.bottom[index] == top):
                new += diffs * shape_bytes(shape)
        params = sum(shape_bytes(t.shape) for t in module.caffe_blobs()) if diffs == 2 else 0
        self.memory_bytes += new + params
        if not torch.cuda.is_available():  # else the net may run on a GPU: place() checks that
            check_fits(where, f"the {PHASE_NAMES[self.phase]} net up to this layer",
                       self.memory_bytes)

    def _module_key(self, name: str) -> str:
        key = name.replace(".", "_") or "layer"
        base, n = key, 1
        while key in self.layer_modules:
            key, n = f"{base}_{n}", n + 1
        return key

    def _share_named_params(self, lp, module, where: str) -> None:
        """ParamSpec.name ties blobs across layers (Caffe weight sharing)."""
        for index, spec in enumerate(lp.param):
            if not spec.name or index >= len(module.blob_names):
                continue
            attr = module.blob_names[index]
            mine = getattr(module, attr)
            owner = self._param_owners.get(spec.name)
            if owner is None:
                self._param_owners[spec.name] = mine
            elif tuple(owner.shape) != tuple(mine.shape):
                raise PrunekitError(
                    f"{where}: shared param '{spec.name}' has shape {list(mine.shape)} here but "
                    f"{list(owner.shape)} where it was first defined"
                )
            else:
                setattr(module, attr, owner)

    # ------------------------------------------------------------------ access
    def layer(self, name: str) -> nn.Module:
        """The module of the layer called ``name`` in the prototxt."""
        for entry in self.entries:
            if entry.name == name:
                return self.layer_modules[entry.key]
        raise KeyError(name)

    def named_layers(self) -> list[tuple[LayerEntry, nn.Module]]:
        return [(e, self.layer_modules[e.key]) for e in self.entries]

    def param_blobs(self) -> list[BlobRef]:
        """All Caffe blobs in net order, shared ones once: the order of a solverstate's history."""
        seen: set[int] = set()
        refs: list[BlobRef] = []
        for entry, module in self.named_layers():
            for index, tensor in enumerate(module.caffe_blobs()):
                if id(tensor) in seen:
                    continue
                seen.add(id(tensor))
                spec = entry.param.param[index] if index < len(entry.param.param) else None
                lr = spec.lr_mult if spec is not None else 1.0
                decay = spec.decay_mult if spec is not None else 1.0
                if not isinstance(tensor, nn.Parameter):
                    lr = 0.0
                refs.append(BlobRef(entry.name, index, tensor, float(lr), float(decay)))
        return refs

    def data_layers(self) -> list[nn.Module]:
        return [m for _, m in self.named_layers() if getattr(m, "is_data", False)]

    def set_seed(self, seed: int) -> None:
        """Seed every data layer (crop/mirror/shuffle are pure functions of seed and position)."""
        for module in self.data_layers():
            module.set_seed(seed)

    def place(self, device: torch.device | str) -> "Net":
        """Move parameters to ``device``; batches from data layers follow. A GPU must have
        room for the net's blobs (:attr:`memory_bytes`) first."""
        self.device = torch.device(device)
        self._memory_checked = False
        if self.device.type == "cuda":
            weights = sum(t.numel() * t.element_size() for t in self.state_dict().values())
            check_fits(self.source, f"the {PHASE_NAMES[self.phase]} net (weights and blobs)",
                       self.memory_bytes + weights, str(self.device))
            self._memory_checked = True
        self.to(self.device)
        for module in self.data_layers():
            place = getattr(module, "place", None)
            if place is not None:
                place(self.device)
        return self

    def use_channels_last(self) -> "Net":
        """Store 4-D weights NHWC (``torch.channels_last``); the convolutions then produce NHWC
        activations and the layers after them keep that layout. Results are the same (a
        memory layout, not a shape); on CPUs oneDNN then skips its NCHW reorders, which matters
        most for the narrow layers of pruned and decomposed nets (benchmarks/compact_speedup.py
        --channels-last)."""
        self.to(memory_format=torch.channels_last)
        return self

    def close(self) -> None:
        """Stop prefetch threads of the data layers."""
        for module in self.data_layers():
            close = getattr(module, "close", None)
            if close is not None:
                close()

    # ------------------------------------------------------------------ running
    def forward(
        self, feed: dict[str, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not self._memory_checked:  # the first forward on the host: its blobs must fit
            check_fits(self.source, f"the {PHASE_NAMES[self.phase]} net",
                       self.memory_bytes, "cpu" if self.device.type == "cpu" else "skip")
            self._memory_checked = True
        blobs: dict[str, torch.Tensor] = {}
        loss = torch.zeros((), device=self.device)
        i = 0
        try:
            while i < len(self.entries):
                entry = self.entries[i]
                covered, tops = self.run_step(i, [blobs[b] for b in entry.bottoms], feed)
                loss = store_tops(self.entries[i + covered - 1], tops, blobs, loss)
                i += covered
        except PrunekitError as err:  # bad data found by a layer (a label out of range, ...)
            raise in_file(self.source, err) from None
        return loss, {name: blobs[name] for name in self.output_names}

    def run_step(self, index: int, bottoms: list[torch.Tensor],
                 feed: dict[str, torch.Tensor] | None = None
                 ) -> tuple[int, tuple[torch.Tensor, ...]]:
        """Run layer ``index`` as ``forward()`` does: (number of layers run, tops of the last).

        A fused BatchNorm + Scale runs both (2, the Scale's top); an in-place ReLU may
        overwrite its bottom (see the class docstring); anything else is :meth:`run_layer`."""
        entry = self.entries[index]
        module = self.layer_modules[entry.key]
        bottoms = cut_gradients(entry.stopped, bottoms)
        if index in self._pairs and not self.entries[index + 1].stopped:
            scale = self.layer_modules[self.entries[index + 1].key]
            if not (is_hooked(module) or is_hooked(scale)):
                return 2, (module.forward_with_scale(bottoms[0], scale.scale, scale.bias),)
        elif index in self._relus:
            x = bottoms[0]
            producer = self.layer_modules[self.entries[self._relus[index]].key]
            if not (x.is_leaf and x.requires_grad) and not (is_hooked(module)
                                                            or is_hooked(producer)):
                return 1, (torch.relu_(x),)
        return 1, self.run_layer(entry, bottoms, feed)

    def run_layer(self, entry: LayerEntry, bottoms: list[torch.Tensor],
                  feed: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, ...]:
        """Run one layer on its bottom tensors (data layers ignore them and read a batch)."""
        module = self.layer_modules[entry.key]
        if getattr(module, "is_data", False):
            batch = module.next_batch()
            tops = tuple(t.to(self.device, non_blocking=True) for t in batch)
            if feed:
                tops = tuple(feed.get(name, t) for name, t in zip(entry.tops, tops))
            return tops
        out = module(*bottoms)
        return (out,) if isinstance(out, torch.Tensor) else tuple(out)


def store_tops(entry: LayerEntry, tops, blobs: dict[str, torch.Tensor],
               loss: torch.Tensor) -> torch.Tensor:
    """Record a layer's tops by blob name (in-place tops replace their bottom) and return
    ``loss`` plus the layer's loss-weighted tops."""
    for name, tensor, weight in zip(entry.tops, tops, entry.loss_weights):
        blobs[name] = tensor
        if weight:
            loss = loss + weight * tensor.sum()
    return loss


def _loss_weights(lp, cls, where: str) -> list[float]:
    """Caffe: loss layers weigh their first top by 1 unless ``loss_weight`` says otherwise."""
    weights = [float(w) for w in lp.loss_weight]
    if not weights and getattr(cls, "is_loss", False) and len(lp.top):
        weights = [1.0]
    if len(weights) > len(lp.top):
        raise PrunekitError(f"{where}: {len(weights)} loss_weight values for {len(lp.top)} tops")
    return weights + [0.0] * (len(lp.top) - len(weights))


def _legacy_input_layers(net_param) -> list:
    """Net-level ``input:``/``input_shape``/``input_dim`` become Input layers, as Caffe upgrades."""
    names = list(net_param.input)
    if not names:
        return []
    shapes = [list(s.dim) for s in net_param.input_shape]
    if not shapes and len(net_param.input_dim):
        dims = list(net_param.input_dim)
        shapes = [dims[i:i + 4] for i in range(0, len(dims), 4)]
    if len(shapes) != len(names):
        raise PrunekitError(
            f"net '{net_param.name}': {len(names)} input blob(s) but {len(shapes)} input shape(s)"
        )
    from prunekit.caffe import caffe_pb2  # the message type lives in the formats package

    lp = caffe_pb2.LayerParameter(name="input", type="Input")
    for name, dims in zip(names, shapes):
        lp.top.append(name)
        lp.input_param.shape.add().dim.extend(int(d) for d in dims)
    return [lp]
