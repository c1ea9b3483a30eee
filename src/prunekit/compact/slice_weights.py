"""New weight blobs for every layer, following the plan: rows, input channels, groups, kernel taps.

Per layer type:

* Convolution: the kept filters of each kept group, their kept local input channels, the folded
  carrier columns (fold_constants.py), the bias plus the folded constants, then the kernel trim
  (kernel_trim.py). InnerProduct: kept rows, kept channels' H×W column blocks (``transpose``
  respected).
* BatchNorm: mean and variance of the kept channels (the mean minus the constants handed to it by
  a bias-less conv, times the moving-average factor it is stored with); the factor is kept.
* Scale, Bias, PReLU: their per-channel operands sliced (a scalar operand stays).

Everything else has no channel-shaped blob, and the trace pinned the inputs of the layers it
cannot cross, so their blobs are copied unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunekit.compact.fold_constants import fold_layer
from prunekit.compact.kernel_trim import trim_kernel
from prunekit.compact.plan import Plan
from prunekit.compact.trace import TracedLayer, Weighted


#: How the note on scattered zero columns ends (report.py drops it for column layers).
SCATTERED_NOTE_END = "the dense layer computes them"


@dataclass
class LayerChange:
    """What compaction did to one layer: new prototxt fields (None = unchanged), blob 0's shape
    before and after, and notes for the report."""

    name: str
    type: str
    before: tuple[int, ...]
    after: tuple[int, ...]
    num_output: int | None = None
    group: int | None = None
    kernel: tuple[int, int] | None = None
    pad: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)
    #: Input crop per spatial axis, ((start, length) or None, ...) with the input's (H, W); the
    #: prototxt gets Slice layers for it (kernel_trim.py). None: the conv reads its whole input.
    crop: tuple[tuple[int, int] | None, tuple[int, int] | None] | None = None
    input_size: tuple[int, int] | None = None


@dataclass
class CompactedWeights:
    """``blobs``: every layer with blobs (new or unchanged), in Caffe blob order.
    ``changes``: the layers whose blobs or fields changed, in net order."""

    blobs: dict[str, list[torch.Tensor]]
    changes: dict[str, LayerChange]


def compact_weights(plan: Plan) -> CompactedWeights:
    """Blobs of the compacted net (see the module docstring)."""
    result = CompactedWeights({}, {})
    bn_shift: dict[int, torch.Tensor] = {}
    for layer in plan.trace.layers:
        blobs = [t.detach() for t in layer.module.caffe_blobs()]
        change = None
        if layer.kind in ("conv", "ip"):
            blobs, change = _weighted(plan, plan.trace.weighted[layer.name], bn_shift)
        elif layer.kind == "channelwise" and blobs:
            blobs, change = _per_channel(plan, layer, blobs, bn_shift.get(layer.index))
        if blobs:
            result.blobs[layer.name] = blobs
        if change is not None:
            result.changes[layer.name] = change
    return result


def _weighted(plan: Plan, w: Weighted, bn_shift: dict[int, torch.Tensor]):
    module = w.layer.module
    folded = fold_layer(plan, w)
    layout = plan.layout(w.name)
    g, n = w.group, w.num_rows
    ng, cg = n // g, w.in_channels // g
    rows_kept, inputs_kept = layout.rows_kept.view(g, ng), layout.inputs_kept.view(g, cg)
    parts, rows = [], []
    for gi in layout.present.nonzero().flatten().tolist():
        r = gi * ng + rows_kept[gi].nonzero().flatten()
        j = inputs_kept[gi].nonzero().flatten()
        parts.append(folded.matrix[r][:, j])
        rows.append(r)
    kept_rows = torch.cat(rows)
    weight = torch.cat(parts)                                   # [N', C'/g', positions]
    notes = []
    if folded.folded:
        target = ("a carrier channel" if folded.carriers else
                  "the bias" if w.has_bias else f"the mean of '{plan.trace.layers[w.sink].name}'")
        notes.append(f"{folded.folded} removed non-zero constant input channel(s) folded into "
                      f"{target}")
    new = []
    if w.layer.kind == "conv":
        weight = weight.reshape(len(kept_rows), -1, *module.weight.shape[2:])
        geo = module.geometry
        spatial = plan.trace.versions[w.input].shape[2:]
        trim = trim_kernel(weight, geo.stride, geo.pad, geo.dilation, spatial)
        kernel = pad = crop = None
        if trim is not None:
            notes += list(trim.notes)
            if trim.changed(geo.kernel):
                (r0, r1), (c0, c1) = trim.keep
                weight = weight[:, :, r0:r1, c0:c1]
                kernel, pad = (r1 - r0, c1 - c0), trim.pad
                crop = trim.crop if trim.crop != (None, None) else None
        new.append(weight.contiguous())
    else:
        weight = weight.reshape(len(kept_rows), -1)
        new.append((weight.t() if module.transpose else weight).contiguous())
        kernel = pad = crop = None
    notes += _scattered(new[0] if w.layer.kind == "conv" else weight, layout.groups)
    if w.has_bias:
        bias = module.bias.detach()
        new.append((bias.double() + folded.delta)[kept_rows].to(bias.dtype))
    elif w.sink is not None and bool((folded.delta != 0).any()):
        bn_shift[w.sink] = folded.delta
    groups = layout.groups
    changed = (len(kept_rows) != n or not bool(layout.inputs_kept.all()) or folded.folded > 0
               or kernel is not None)
    if not changed and not notes:
        return new, None
    change = LayerChange(
        w.name, w.layer.entry.type, tuple(module.weight.shape), tuple(new[0].shape),
        num_output=len(kept_rows) if len(kept_rows) != n else None,
        group=groups if groups != g else None, kernel=kernel, pad=pad, notes=notes, crop=crop,
        input_size=tuple(spatial) if crop is not None else None)
    return new, change


def _scattered(weight: torch.Tensor, groups: int) -> list[str]:
    """A note when weight columns (input channel × kernel position, or one IP input) are still
    all zero after compaction: scattered zeros, or kernel taps that could not be trimmed. The
    masked model's theoretical MAC count skips them; the compacted dense layer does not."""
    rows = weight.reshape(groups, weight.shape[0] // groups, -1)
    zero = int((rows.abs().sum(1) == 0).sum())
    if not zero:
        return []
    return [f"{zero:,} of {rows.shape[0] * rows.shape[2]:,} weight columns (input channel x kernel "
            f"position) are still all zero: {SCATTERED_NOTE_END}"]


def _per_channel(plan: Plan, layer: TracedLayer, blobs: list[torch.Tensor],
                 shift: torch.Tensor | None):
    kept = plan.kept(layer.bottoms[0])
    idx = kept.nonzero().flatten()
    typ = layer.entry.type
    notes = []
    if typ == "BatchNorm":
        mean, var, factor = blobs
        if shift is not None:
            mean = (mean.double() - shift * float(factor.reshape(-1)[0])).to(mean.dtype)
            notes.append("mean shifted by the constants of removed input channels of the conv "
                         "before it")
        new = [mean[idx], var[idx], factor]
    elif typ == "PReLU" and layer.module.channel_shared:
        new = blobs
    else:   # Scale, Bias, PReLU: operands along the channel axis (trace checked), or scalars
        new = [t[idx] if t.dim() >= 1 else t for t in blobs]
    if bool(kept.all()) and shift is None:
        return blobs, None
    return new, LayerChange(layer.name, typ, tuple(blobs[0].shape), tuple(new[0].shape),
                            notes=notes)
