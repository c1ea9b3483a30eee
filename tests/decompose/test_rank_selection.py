"""Rank selection: the knapsack finds the brute-force optimum, both searches keep the budget,
unreachable ratios are a clear error."""

from __future__ import annotations

import itertools
import math

import pytest

from prunekit.decompose.candidates import Candidate
from prunekit.decompose.rank_selection import select_dp, select_greedy, select_ranks
from prunekit.errors import PrunekitError

CANDS = [Candidate("c1", "conv", 6, 600, 90), Candidate("c2", "conv", 8, 1000, 110),
         Candidate("c3", "conv", 5, 500, 70)]
ENERGY = {"c1": [0.5, 0.7, 0.8, 0.9, 0.95, 1.0], "c2": [0.3, 0.55, 0.7, 0.8, 0.87, 0.92, 0.96, 1.0],
          "c3": [0.6, 0.8, 0.9, 0.97, 1.0]}


def brute_force(budget: float) -> float:
    """Best Σ log E over every rank choice (0 = dense) within the budget."""
    best = -math.inf
    choices = [range(0, c.useful_rank + 1) for c in CANDS]
    for ranks in itertools.product(*choices):
        cost = sum(c.dense_macs if r == 0 else c.macs(r) for c, r in zip(CANDS, ranks))
        if cost <= budget:
            best = max(best, sum(0.0 if r == 0 else math.log(ENERGY[c.name][r - 1])
                                 for c, r in zip(CANDS, ranks)))
    return best


def score(ranks: dict[str, int]) -> tuple[float, int]:
    log_e = sum(math.log(ENERGY[n][r - 1]) for n, r in ranks.items())
    cost = sum(c.macs(ranks[c.name]) if c.name in ranks else c.dense_macs for c in CANDS)
    return log_e, cost


@pytest.mark.parametrize("budget", [700, 1000, 1400, 1800])
def test_dp_is_the_exact_optimum_and_greedy_keeps_the_budget(budget):
    log_e, cost = score(select_dp(CANDS, ENERGY, budget, buckets=budget))  # 1 MAC per bucket
    assert cost <= budget and log_e == pytest.approx(brute_force(budget))
    g_log_e, g_cost = score(select_greedy(CANDS, ENERGY, budget))
    assert g_cost <= budget and g_log_e <= log_e + 1e-12


def test_unreachable_ratio_is_an_error_naming_the_best_reachable():
    with pytest.raises(PrunekitError, match=r"--ratio 20 cannot be reached.*only 7\.78x"):
        select_ranks(CANDS, ENERGY, 20, 2100)  # rank 1 everywhere: 2100 / 270 MACs
    with pytest.raises(PrunekitError, match="greater than 1"):
        select_ranks(CANDS, ENERGY, 1, 2100)
