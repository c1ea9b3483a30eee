"""Which channels go: every removable class, minus the channels kept back so that the compacted
net is valid Caffe and computes exactly what the masked net computes.

Start: a class goes when all its channels are constants and nothing pins it (trace.py). Then,
until nothing changes, every Convolution / InnerProduct the trace crosses checks:

* **at least one filter and one input channel** (Caffe rejects ``num_output: 0``);
* **groups** (``group: g``): a group goes only as a whole (all its filters and input channels:
  for a depthwise conv a removed channel removes its group); the groups that stay keep equal
  filter and input-channel counts, so zero channels are kept back until they are equal;
* ``--round-to N``: a layer whose filters are removed keeps a multiple of N of them (tensor
  cores), or all of them;
* **a carrier** when removed non-zero constants cannot go into a bias: a padded conv (the
  constant's contribution differs at the borders) or a layer without bias and without a
  BatchNorm right after it. One constant channel of the group stays; the removed constants are
  folded into its weights (fold_constants.py), exact at the borders too.

Kept-back channels are the highest-scoring ones of those that could go: score = L1 norm of the
weights that read or write the channel (its filters, which are zero in a masked model, plus its
consumers' input columns), so what is kept back is what the net leans on most.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from prunekit.compact.trace import ChannelTrace, Weighted

#: A carrier smaller than this fraction of the largest constant it carries is not used
#: (the folded weights would be scaled by c / c0 and lose precision).
CARRIER_MIN_RATIO = 1e-3

TIED_LIVE = "tied (Eltwise/shared conv) to channels that are not constant"


@dataclass
class GroupLayout:
    """How a weighted layer's groups look after compaction (counts per group)."""

    present: torch.Tensor         # bool [g]: the group stays
    rows_kept: torch.Tensor       # bool [N]
    inputs_kept: torch.Tensor     # bool [C]

    @property
    def groups(self) -> int:
        return int(self.present.sum())


@dataclass
class Plan:
    """The outcome: ``removed[class]``, and why removable classes were kept back."""

    trace: ChannelTrace
    removed: torch.Tensor                       # bool [num_classes]
    round_to: int = 1
    kept_back: dict[int, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ queries
    def kept(self, version_id: int) -> torch.Tensor:
        """bool [C]: channels of a blob version that stay."""
        return ~self.removed[self.trace.classes(version_id)]

    def rows_kept(self, layer: str) -> torch.Tensor:
        """bool [N]: filters of a weighted layer that stay."""
        return ~self.removed[self.trace.row_classes(layer)]

    def layout(self, layer: str) -> GroupLayout:
        """Kept filters, kept input channels and surviving groups of a weighted layer (a group
        survives while any of its filters or input channels does)."""
        w = self.trace.weighted[layer]
        rows, inputs = self.rows_kept(layer), self.kept(w.input)
        g = w.group
        present = rows.view(g, -1).any(1) | inputs.view(g, -1).any(1)
        return GroupLayout(present, rows, inputs)

    def needs_carrier(self, w: Weighted, group: int) -> torch.Tensor:
        """bool [C/g]: removed local input channels of ``group`` whose non-zero constant reaches
        a kept filter and cannot go into a bias (padded conv, or no bias and no BatchNorm)."""
        if not w.padded and (w.has_bias or w.sink is not None):
            return torch.zeros(w.in_channels // w.group, dtype=torch.bool)
        version = self.trace.versions[w.input]
        cg, ng = w.in_channels // w.group, w.num_rows // w.group
        local = slice(group * cg, (group + 1) * cg)
        removed = ~self.kept(w.input)[local]
        rows = self.rows_kept(w.name)[group * ng:(group + 1) * ng]
        reaches = w.nonzero[group * ng:(group + 1) * ng][rows].any(0)
        return removed & (version.value[local] != 0) & reaches

    def carrier(self, w: Weighted, group: int) -> int | None:
        """Local index of the kept constant channel that carries ``group``'s removed constants
        (the one with the largest |c|), or None when none is needed or none is usable."""
        need = self.needs_carrier(w, group)
        if not need.any():
            return None
        version = self.trace.versions[w.input]
        cg = w.in_channels // w.group
        local = slice(group * cg, (group + 1) * cg)
        usable = self.kept(w.input)[local] & ~version.live[local] & (version.value[local] != 0)
        if not usable.any():
            return None
        magnitude = torch.where(usable, version.value[local].abs(), -1.0)
        best = int(magnitude.argmax())
        largest = float(version.value[local][need].abs().max())
        return best if float(magnitude[best]) >= CARRIER_MIN_RATIO * largest else None

    # ------------------------------------------------------------------ building
    def _keep(self, classes: torch.Tensor, count: int, reason: str) -> bool:
        """Keep back the ``count`` highest-scoring removed classes among ``classes``."""
        candidates = torch.unique(classes[self.removed[classes]])
        if count <= 0 or not len(candidates):
            return False
        order = torch.argsort(self.trace.score[candidates], descending=True, stable=True)
        for cls in candidates[order[:count]].tolist():
            self.removed[cls] = False
            self.kept_back.setdefault(cls, reason)
        return True

    def _constrain(self, w: Weighted) -> bool:
        """Apply the checks of the module docstring to one layer; True if a class was kept back."""
        trace = self.trace
        g, n, c = w.group, w.num_rows, w.in_channels
        ng, cg = n // g, c // g
        row_cls = trace.row_classes(w.name).view(g, ng)
        in_cls = trace.classes(w.input).view(g, cg)
        lay = self.layout(w.name)
        k_out = lay.rows_kept.view(g, ng).sum(1)
        k_in = lay.inputs_kept.view(g, cg).sum(1)
        present = lay.present
        if not present.any():
            return self._keep(row_cls.reshape(-1), 1, f"'{w.name}' keeps at least one filter")
        want_out = max(int(k_out[present].max()), 1)
        want_in = max(int(k_in[present].max()), 1)
        why_out = (f"equal filters per group in '{w.name}'" if g > 1
                   else f"'{w.name}' keeps at least one filter")
        why_in = (f"equal input channels per group in '{w.name}'" if g > 1
                  else f"'{w.name}' keeps at least one input channel")
        changed = False
        for gi in present.nonzero().flatten().tolist():
            changed |= self._keep(row_cls[gi], want_out - int(k_out[gi]), why_out)
            changed |= self._keep(in_cls[gi], want_in - int(k_in[gi]), why_in)
        if changed:
            return True
        groups = int(present.sum())
        if self.round_to > 1 and want_out * groups < n:
            target = want_out
            while target < ng and (target * groups) % self.round_to:
                target += 1
            for gi in present.nonzero().flatten().tolist():
                changed |= self._keep(row_cls[gi], target - int(k_out[gi]),
                                      f"--round-to {self.round_to}")
            if changed:
                return True
        for gi in present.nonzero().flatten().tolist():
            need = self.needs_carrier(w, gi)
            if need.any() and self.carrier(w, gi) is None:
                values = trace.versions[w.input].value.view(g, cg)[gi]
                best = int(torch.where(need, values.abs(), -1.0).argmax())
                self.removed[in_cls[gi, best]] = False
                self.kept_back.setdefault(
                    int(in_cls[gi, best]),
                    f"carrier: '{w.name}' " + ("is padded" if w.padded else "has no bias") +
                    ", so removed constants are folded into this channel's weights")
                changed = True
        return changed

    def row_status(self, layer: str) -> tuple[int, int, dict[str, int]]:
        """(filters removed, constant filters kept, {reason: count}) of a weighted layer.

        A constant filter is one whose output does not depend on the input (e.g. zeroed)."""
        w = self.trace.weighted[layer]
        classes = self.trace.row_classes(layer)
        constant = ~self.trace.versions[w.layer.tops[0]].live
        kept = ~self.removed[classes]
        reasons: dict[str, int] = {}
        for cls in classes[constant & kept].tolist():
            reason = (self.trace.pin_reason.get(cls) or self.kept_back.get(cls)
                      or (TIED_LIVE if bool(self.trace.class_live[cls]) else "kept"))
            reasons[reason] = reasons.get(reason, 0) + 1
        return int((~kept).sum()), int((constant & kept).sum()), reasons


def make_plan(trace: ChannelTrace, round_to: int = 1) -> Plan:
    """Decide which classes go (see the module docstring). ``round_to`` ≥ 1."""
    plan = Plan(trace, ~trace.class_live & ~trace.pinned, round_to)
    changed = True
    while changed:
        changed = False
        for w in trace.weighted.values():
            while plan._constrain(w):
                changed = True
    return plan
