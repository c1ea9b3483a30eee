"""The exact multiple-choice knapsack against brute force on small random cases."""

from __future__ import annotations

import itertools
import random

import pytest

from prunekit.analysis.knapsack import solve
from prunekit.errors import PrunekitError


def brute_force(costs, losses, budget):
    best = None
    for pick in itertools.product(*(range(len(c)) for c in costs)):
        if sum(c[j] for c, j in zip(costs, pick)) <= budget:
            total = sum(v[j] for v, j in zip(losses, pick))
            best = total if best is None else min(best, total)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_knapsack_matches_brute_force(seed: int) -> None:
    rng = random.Random(seed)
    items = rng.randint(1, 4)
    costs = [[rng.randint(0, 12) for _ in range(rng.randint(1, 4))] for _ in range(items)]
    losses = [[round(rng.uniform(-0.2, 1.0), 3) for _ in c] for c in costs]
    budget = rng.randint(sum(min(c) for c in costs), sum(max(c) for c in costs))
    chosen, total = solve(costs, losses, budget)
    assert sum(c[j] for c, j in zip(costs, chosen)) <= budget
    assert total == pytest.approx(sum(v[j] for v, j in zip(losses, chosen)))
    assert total == pytest.approx(brute_force(costs, losses, budget))


def test_knapsack_refuses_an_impossible_budget() -> None:
    with pytest.raises(PrunekitError, match="budget 3"):
        solve([[2, 5], [2, 4]], [[0, 0], [0, 0]], 3)
