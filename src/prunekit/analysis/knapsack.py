"""Multiple-choice knapsack: one option per item, total cost within a budget, least total loss.

The planner's problem (Distiller/NNI-style curves, HALP-style latency budget): item = a layer,
option = a pruning ratio with an integer cost (kept MACs or latency, in resolution units) and a
predicted loss. Solved exactly by dynamic programming over the integer costs, O(items · options ·
budget); the planner chooses the cost resolution (``prunekit.analysis.planner``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prunekit.errors import PrunekitError


def solve(costs: Sequence[Sequence[int]], losses: Sequence[Sequence[float]],
          budget: int) -> tuple[list[int], float]:
    """(chosen option per item, total loss) minimising Σ loss with Σ cost ≤ ``budget``.

    ``costs[i][j]`` ≥ 0 (int) and ``losses[i][j]`` of option j of item i. Ties go to the option
    listed first. Raises PrunekitError when even the cheapest options exceed the budget.
    """
    budget = int(budget)
    if sum(min(c) for c in costs) > budget:
        raise PrunekitError(f"no choice of options fits the budget {budget}: the cheapest "
                            f"costs {sum(min(c) for c in costs)}")
    best = np.full(budget + 1, np.inf)
    best[0] = 0.0
    choices = []
    for item_costs, item_losses in zip(costs, losses):
        new = np.full(budget + 1, np.inf)
        pick = np.full(budget + 1, -1, dtype=np.int64)
        for j, (c, v) in enumerate(zip(item_costs, item_losses)):
            c = int(c)
            if c > budget:
                continue
            cand = best[:budget + 1 - c] + float(v)
            better = cand < new[c:]
            new[c:][better] = cand[better]
            pick[c:][better] = j
        best = new
        choices.append(pick)
    end = int(np.argmin(best))
    total = float(best[end])
    chosen = []
    for i in reversed(range(len(costs))):
        j = int(choices[i][end])
        chosen.append(j)
        end -= int(costs[i][j])
    return chosen[::-1], total
