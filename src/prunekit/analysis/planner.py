"""Per-layer pruning ratios that reach a target speedup at the least predicted accuracy loss.

Cost model: an item pruned to ratio r keeps the share of its groups left (1 − ⌊r·n⌋/n of n)
of its own cost, where the cost is its
dense conv MACs (``--by macs``) or its measured forward ms (``--by latency``); everything else
(convs that are no item, and for latency every other layer) is a fixed cost. The target
``speedup`` S asks for total kept cost ≤ total / S. For Row/Channel the consumers' saved input
columns are not counted, so the plan is conservative (the real MAC speedup is at least S);
``--by latency`` corrects its own model by measuring (``prunekit.analysis.latency_plan``).

Predicted loss of option r: the curve's accuracy drop from dense (or its loss increase when
the table has no accuracy), from ``prunekit sensitivity``. Costs are rounded to units of
total/``resolution`` for the exact knapsack; when the rounding lets a choice exceed the target,
the budget is tightened by one unit until the true cost meets it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prunekit.analysis.knapsack import solve
from prunekit.errors import PrunekitError
from prunekit.prune.methods.mask_method import count_to_prune


@dataclass
class Planned:
    name: str
    members: list[str]
    ratio: float
    predicted_loss: float
    cost: float          # dense cost of the item (MACs or ms)
    kept_cost: float


@dataclass
class Plan:
    items: list[Planned]
    target: float
    total_cost: float
    kept_cost: float
    predicted_loss: float

    @property
    def predicted_speedup(self) -> float:
        return self.total_cost / self.kept_cost if self.kept_cost else math.inf


def kept_fraction(curve: dict, ratio: float) -> float:
    """Share of the item's groups a ratio keeps: the whole groups actually pruned, as
    ``prunekit sensitivity`` prunes them (2 filters at ratio 0.25 prune none)."""
    n = curve["num_groups"]
    return 1 - count_to_prune(n, ratio) / n


def predicted_losses(curve: dict, use_accuracy: bool) -> list[float]:
    """Drop of accuracy (or rise of loss) at each ratio of a curve, relative to its ratio 0."""
    if use_accuracy:
        acc = curve["accuracy"]
        return [acc[0] - a for a in acc]
    return [v - curve["loss"][0] for v in curve["loss"]]


def plan(sensitivity: dict, costs: dict[str, float], fixed_cost: float, speedup: float,
         resolution: int = 2000, max_ratio: float | None = None) -> Plan:
    """Choose one ratio per curve of ``sensitivity`` (the JSON of ``prunekit sensitivity``).

    ``costs``: dense cost per curve name; ``fixed_cost``: the cost no choice changes."""
    if speedup < 1:
        raise PrunekitError(f"--speedup {speedup}: expected a speedup of at least 1")
    curves = sensitivity["curves"]
    use_acc = sensitivity.get("dense_accuracy") is not None
    total = fixed_cost + sum(costs[c["name"]] for c in curves)
    unit = total / resolution
    budget = math.floor((total / speedup - fixed_cost) / unit + 1e-9)
    if budget < 0:
        raise PrunekitError(f"--speedup {speedup}: the layers that cannot be pruned already "
                            f"cost {fixed_cost / total:.1%} of the net; at most "
                            f"{total / max(fixed_cost, 1e-30):.2f}x is reachable")
    options = [[i for i, r in enumerate(c["ratios"]) if max_ratio is None or r <= max_ratio]
               for c in curves]
    kept = [[costs[c["name"]] * kept_fraction(c, c["ratios"][i]) for i in opts]
            for c, opts in zip(curves, options)]
    int_costs = [[round(k / unit) for k in ks] for ks in kept]
    losses = [[predicted_losses(c, use_acc)[i] for i in opts] for c, opts in zip(curves, options)]
    limit = (total / speedup - fixed_cost) * (1 + 1e-9)
    while True:   # rounded costs may exceed the true limit by a few units: tighten until not
        try:
            chosen, total_loss = solve(int_costs, losses, budget)
        except PrunekitError:
            raise PrunekitError(f"--speedup {speedup}: not reachable with the ratios of the "
                                f"sensitivity table (largest {max(curves[0]['ratios'])}); add "
                                "larger ratios to --ratios") from None
        if sum(k[j] for k, j in zip(kept, chosen)) <= limit:
            break
        budget -= 1
    items = []
    for c, opts, j in zip(curves, options, chosen):
        i = opts[j]
        r = c["ratios"][i]
        items.append(Planned(c["name"], c["members"], r, predicted_losses(c, use_acc)[i],
                             costs[c["name"]], costs[c["name"]] * kept_fraction(c, r)))
    kept = fixed_cost + sum(p.kept_cost for p in items)
    return Plan(items, speedup, total, kept, total_loss)


def format_plan(p: Plan, by: str) -> str:
    """The summary table printed by ``prunekit plan``."""
    unit = "MACs" if by == "macs" else "ms"
    lines = [f"{'layer':<16} {'ratio':>6} {'pred. loss':>10} {'dense ' + unit:>14} "
             f"{'kept ' + unit:>14}"]
    for it in p.items:
        name = it.name + (f" (+{len(it.members) - 1})" if len(it.members) > 1 else "")
        lines.append(f"{name:<16} {it.ratio:>6.2f} {it.predicted_loss:>10.4f} "
                     f"{it.cost:>14,.3f} {it.kept_cost:>14,.3f}")
    lines.append(f"target {p.target:.2f}x, model-predicted {p.predicted_speedup:.2f}x by {unit}; "
                 f"predicted loss (sum of the curves' drops) {p.predicted_loss:.4f}")
    return "\n".join(lines)
