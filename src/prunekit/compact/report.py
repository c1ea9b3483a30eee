"""The report ``prunekit compact`` prints: per layer the blob shape before → after and the MACs,
why constant channels stayed, and the totals that say how much of the masked model's theoretical
speedup the compacted model physically realises.

MACs are multiply-accumulates per image (FLOPs = 2 × MACs), counted by
:mod:`prunekit.measure.flops`: "theoretical" is the masked model with all-zero filters, channels
and kernel rows/columns skipped (``prunekit flops --weights``), "compacted" is the dense count of
the compacted model. Compaction can realise more than the theoretical figure (it also removes the
input channels of zeroed filters, which the masked count still charges to the consumer) or less
(scattered zero columns, carriers, kept-back channels).

Convs the column stage (column_form.py) looked at get one more note: which form they got and,
with ``--column-conv auto``, both forms' forward times (ms per batch, with the batch size and
layout); a column layer shows as ColumnConvolution with its (num_output, kept columns) weight.
"""

from __future__ import annotations

from prunekit.compact import Compaction
from prunekit.compact.column_form import ColumnChoice
from prunekit.compact.slice_weights import SCATTERED_NOTE_END
from prunekit.compact.verify import BlobDiff
from prunekit.measure.flops import LayerCount, Totals, totals

UNITS = "MACs = multiply-accumulates per image (FLOPs = 2 x MACs); params = learnable blobs"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def layer_lines(compaction: Compaction, masked: list[LayerCount], compacted: list[LayerCount],
                columns: list[ColumnChoice] = ()) -> list[str]:
    """The per-layer table plus indented notes (constant filters kept and why, folds, kernels,
    the column stage's choice)."""
    choices = {c.name: c for c in columns}
    plan = compaction.plan
    before = {r.name: r for r in masked}
    after = {r.name: r for r in compacted}
    changes = compaction.weights.changes
    names = [layer.name for layer in plan.trace.layers
             if layer.name in changes or layer.kind in ("conv", "ip")]
    body, notes = [], {}
    for name in names:
        change = changes.get(name)
        layer = plan.trace.layer(name)
        blobs = layer.module.caffe_blobs()
        shape_before = change.before if change else tuple(blobs[0].shape) if blobs else ()
        shape_after = change.after if change else shape_before
        m, c = before.get(name), after.get(name)
        macs = f"{m.macs_left:,} -> {c.macs:,}" if m and c and (m.macs or c.macs) else ""
        choice = choices.get(name)
        kind = layer.entry.type
        lines = list(change.notes) if change else []
        if choice is not None and choice.column:
            kind, shape_after = "ColumnConvolution", (shape_after[0], choice.kept)
            lines = [n for n in lines if not n.endswith(SCATTERED_NOTE_END)]
        body.append((name, kind, f"{_shape(shape_before)} -> {_shape(shape_after)}", macs))
        if choice is not None:
            lines.append(choice.line())
        if name in plan.trace.weighted:
            removed, kept, why = plan.row_status(name)
            if removed:
                lines.insert(0, f"{removed} filter(s) removed")
            lines += [f"{count} constant filter(s) kept: {reason}" for reason, count in why.items()]
        if lines:
            notes[name] = lines
    cols = ("layer", "type", "blob 0: masked -> compacted", "MACs: theoretical -> compacted")
    widths = [max(len(c), *(len(b[i]) for b in body)) if body else len(c)
              for i, c in enumerate(cols)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*cols).rstrip()]
    for row in body:
        out.append(fmt.format(*row).rstrip())
        out += [f"    {line}" for line in notes.get(row[0], [])]
    return out


def total_lines(masked: Totals, compacted: Totals) -> list[str]:
    """Conv and all-layer MACs (dense, theoretical, compacted) and parameters."""
    lines = []
    for label, dense, left, now in (
            ("conv MACs:     ", masked.conv_macs, masked.conv_macs_left, compacted.conv_macs),
            ("all-layer MACs:", masked.all_macs, masked.all_macs_left, compacted.all_macs)):
        theoretical, realised = _ratio(dense, left), _ratio(dense, now)
        lines.append(f"{label} {dense:,} dense; masked with zero structure skipped {left:,} "
                     f"(theoretical speedup {theoretical:.2f}x); compacted {now:,} "
                     f"(realised speedup {realised:.2f}x, {100 * realised / theoretical:.0f}% of "
                     "the theoretical)")
    lines.append(f"params:         {masked.params:,} -> {compacted.params:,} "
                 f"({_ratio(masked.params, compacted.params):.2f}x fewer; the masked model has "
                 f"{masked.nonzero_params:,} non-zero)")
    return lines


def _ratio(a: int, b: int) -> float:
    return a / b if b else float("inf")


def check_line(diffs: list[BlobDiff] | None, reason: str = "", checked: str = "compacted") -> str:
    """One line: the largest masked-vs-``checked`` difference on the compared blobs."""
    if diffs is None:
        return f"self-check: skipped ({reason})"
    if not diffs:
        return "self-check: no output to compare"
    worst = max(diffs, key=lambda d: d.relative)
    return (f"self-check (random input, {len(diffs)} blob(s)): max |masked - {checked}| = "
            f"{worst.max_abs:.3g} on '{worst.name}' (output scale {worst.scale:.3g}, "
            f"relative {worst.relative:.2g})")


def format_report(compaction: Compaction, masked: list[LayerCount],
                  compacted: list[LayerCount], check: str,
                  columns: list[ColumnChoice] = ()) -> str:
    """The whole report (see the module docstring)."""
    lines = [UNITS, ""] + layer_lines(compaction, masked, compacted, columns) + [""]
    lines += total_lines(totals(masked), totals(compacted)) + [check]
    return "\n".join(lines)
