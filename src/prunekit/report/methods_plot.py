"""Figure (c): a methods table (the JSON of ``benchmarks/methods_table.py``) as top-1 after
pruning against the measured CPU speedup of the compacted model, one point per run."""

from __future__ import annotations

from prunekit.errors import PrunekitError
from prunekit.report.figure import new_figure, save_png


def plot_methods(record: dict, out: str, source: str = "") -> None:
    rows = record.get("rows") if isinstance(record, dict) else None
    if not rows or any(k not in r for r in rows for k in ("run", "measured", "top1_after")):
        raise PrunekitError(f"--methods {source}: expected the JSON of benchmarks/methods_table.py"
                            " (rows with run, measured and top1_after)")
    fig, axes = new_figure(6.5, 4.5)
    ax = axes[0][0]
    for r in rows:
        ax.scatter(r["measured"], r["top1_after"], s=40)
        ax.annotate(r["run"].split("/")[-1], (r["measured"], r["top1_after"]), fontsize=8,
                    xytext=(4, 4), textcoords="offset points")
    before = {r["top1_before"] for r in rows if "top1_before" in r}
    for b in before:
        ax.axhline(b, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(f"measured speedup, compacted vs masked (batch {record.get('batch', '?')})")
    ax.set_ylabel("top-1 after pruning (final model)")
    ax.set_title(record.get("machine", "methods table"), fontsize=9)
    ax.grid(alpha=0.3)
    save_png(fig, out)
