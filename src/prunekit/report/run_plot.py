"""Figure (a): one pruning run — test accuracy and losses against the step with the
prune / losseval / retrain / final_retrain phases shaded, theoretical speedup against the step,
and each layer's pruned ratio at the end (:mod:`prunekit.report.run_log`)."""

from __future__ import annotations

from prunekit.report.figure import new_figure, save_png
from prunekit.report.run_log import RunLog

PHASE_COLOURS = {"prune": "#f4cccc", "losseval": "#fff2cc", "retrain": "#d9ead3",
                 "final_retrain": "#cfe2f3"}


def plot_run(run: RunLog, out: str, title: str = "pruning run") -> None:
    fig, axes = new_figure(13, 4, 1, 3)
    curves, speed, ratios = axes[0]
    _shade(curves, run)
    loss_ax = curves.twinx()
    for name, series in sorted(run.test.items()):
        if series:
            ax = loss_ax if "loss" in name else curves
            ax.plot(*zip(*series), marker=".", ls="--" if "loss" in name else "-",
                    color=None if "loss" not in name else "C1", label=f"test {name}")
    if run.train_loss:
        loss_ax.plot(*zip(*run.train_loss), color="grey", alpha=0.6, label="train loss")
    loss_ax.set_ylabel("loss (dashed: test, grey: train)")
    curves.set_xlabel("iterations run")
    curves.set_ylabel("test score")
    curves.set_title(title)
    curves.legend(loc="lower left", fontsize=8)
    loss_ax.legend(loc="upper right", fontsize=8)
    _shade(speed, run)
    if run.speedup:
        speed.plot(*zip(*run.speedup), color="C3")
    else:
        speed.text(0.5, 0.5, "no speedup lines in this log", ha="center", transform=speed.transAxes)
    speed.set_xlabel("iterations run")
    speed.set_ylabel("theoretical speedup (conv MACs)")
    names = sorted(run.pruned_ratio)
    ratios.bar(names, [run.pruned_ratio[n] for n in names], color="C0")
    ratios.set_ylim(0, 1)
    ratios.set_ylabel("pruned ratio at the end")
    save_png(fig, out)


def _shade(ax, run: RunLog) -> None:
    seen = set()
    for start, end, name in run.phases:
        ax.axvspan(start, end, color=PHASE_COLOURS.get(name, "#eeeeee"), alpha=0.7, lw=0,
                   label=None if name in seen else name)
        seen.add(name)
