"""The text table of a sensitivity run (``prunekit sensitivity`` prints it and writes it to
``S.txt`` next to ``S.json``)."""

from __future__ import annotations


def format_sensitivity(data: dict) -> str:
    """One block per item: MACs, time share, then accuracy and loss per ratio."""
    score = "loss" if data["score"] == "accuracy" else "distortion"
    lines = [f"sensitivity: unit {data['unit']}, criterion {data['criterion']}, one item pruned "
             f"at a time, no retraining; conv MACs per image {data['total_conv_macs']:,}"]
    for c in data["curves"]:
        share = "-" if c["time_share"] is None else f"{c['time_share']:.1%}"
        members = "" if len(c["members"]) == 1 else f" (with {', '.join(c['members'][1:])})"
        lines.append("")
        lines.append(f"{c['name']}{members}: {c['num_groups']} groups, "
                     f"{c['macs'] / max(data['total_conv_macs'], 1):.1%} of conv MACs "
                     f"({c['macs']:,}), {share} of forward time")
        lines.append(f"  {'ratio':>6} {'accuracy':>9} {score:>10}")
        for r, a, v in zip(c["ratios"], c["accuracy"], c["loss"]):
            lines.append(f"  {r:>6.2f} {'-' if a is None else format(a, '.4f'):>9} {v:>10.4f}")
    return "\n".join(lines)
