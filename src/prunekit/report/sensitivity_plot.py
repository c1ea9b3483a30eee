"""Figure (b): sensitivity curves, one line per item (accuracy, or output distortion for a
deploy net, against the pruned ratio), from the JSON of ``prunekit sensitivity``."""

from __future__ import annotations

from prunekit.report.figure import new_figure, save_png


def plot_sensitivity(data: dict, out: str) -> None:
    fig, axes = new_figure(6.5, 4.5)
    ax = axes[0][0]
    key = "accuracy" if data["score"] == "accuracy" else "loss"
    for c in data["curves"]:
        share = c["macs"] / max(data["total_conv_macs"], 1)
        ax.plot(c["ratios"], c[key], marker="o", label=f"{c['name']} ({share:.0%} of conv MACs)")
    ax.set_xlabel(f"pruned ratio ({data['unit']}, {data['criterion']})")
    ax.set_ylabel("top-1 accuracy" if key == "accuracy" else "output distortion")
    ax.set_title("sensitivity: one layer pruned at a time, no retraining")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, out)
