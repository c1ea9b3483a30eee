"""Ranks that meet a MAC budget while keeping the most energy (accnn's objective).

Maximise Π_l E_l(r_l) — i.e. Σ_l log E_l(r_l) — subject to Σ_l MACs_l(r_l) ≤ budget, where each
layer either keeps its dense form (E = 1, its dense MACs) or is split at a rank r in
1..useful_rank (:mod:`prunekit.decompose.candidates`). Unlike accnn, keeping a layer dense is an
option, so a layer whose split cannot pay off (e.g. ResNet's 7×7 stride-2 conv1 on 3 channels)
is simply left alone.

* ``dp``: the exact multiple-choice knapsack, as accnn, on costs bucketed to budget/``buckets``
  (rounded up, so the budget always holds; the rounding wastes at most one bucket per layer).
* ``greedy``: Zhang et al.'s loop with a heap: start with every layer dense, then repeatedly take
  the one-step rank reduction that loses the least log-energy per MAC saved, until the budget
  holds. O(total ranks · log layers); what to use for very deep nets.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from prunekit.decompose.candidates import Candidate
from prunekit.errors import PrunekitError

DENSE = 0  # rank value meaning "keep the layer as it is"


def _options(c: Candidate, energy: list[float]) -> list[tuple[int, int, float]]:
    """(rank, MACs, log E) from the dense form down to rank 1 (MACs strictly decreasing)."""
    opts = [(DENSE, c.dense_macs, 0.0)]
    for r in range(c.useful_rank, 0, -1):
        opts.append((r, c.macs(r), math.log(max(energy[r - 1], 1e-300))))
    return opts


def check_budget(cands: list[Candidate], budget: float, ratio: float, dense_total: int) -> None:
    """Error naming the largest reachable ratio when even rank 1 everywhere is over budget."""
    floor = sum(c.macs(1) for c in cands)
    if floor > budget:
        fixed = dense_total - sum(c.dense_macs for c in cands)
        best = dense_total / (fixed + floor) if fixed + floor else math.inf
        raise PrunekitError(f"--ratio {ratio:g} cannot be reached: with rank 1 in every "
                            f"decomposable layer the speedup is only {best:.2f}x")


def select_dp(cands: list[Candidate], energies: dict[str, list[float]], budget: float,
              buckets: int = 4000) -> dict[str, int]:
    """Exact knapsack on bucketed costs; returns {layer: rank} for the split layers."""
    quantum = budget / buckets
    best = np.full(buckets + 1, -np.inf)
    best[0] = 0.0
    choices = []
    for c in cands:
        opts = _options(c, energies[c.name])
        new = np.full_like(best, -np.inf)
        pick = np.full(buckets + 1, -1, dtype=np.int64)
        for i, (_, macs, log_e) in enumerate(opts):
            cost = math.ceil(macs / quantum - 1e-9)
            if cost > buckets:
                continue
            cand = np.full_like(best, -np.inf)
            cand[cost:] = best[:buckets + 1 - cost] + log_e
            better = cand > new
            new[better], pick[better] = cand[better], i
        best = new
        choices.append((opts, pick))
    if not np.isfinite(best).any():
        raise PrunekitError("no choice of ranks meets the MAC budget")
    b = int(np.argmax(best))
    ranks: dict[str, int] = {}
    for c, (opts, pick) in zip(reversed(cands), reversed(choices)):
        rank, macs, _ = opts[int(pick[b])]
        b -= math.ceil(macs / quantum - 1e-9)
        if rank != DENSE:
            ranks[c.name] = rank
    return dict(reversed(list(ranks.items())))


def select_greedy(cands: list[Candidate], energies: dict[str, list[float]],
                  budget: float) -> dict[str, int]:
    """Zhang et al.'s greedy rank reduction with a heap; returns {layer: rank}."""
    opts = [_options(c, energies[c.name]) for c in cands]
    at = [0] * len(cands)
    total = sum(o[0][1] for o in opts)
    heap = [(_loss_per_mac(o, 0), i) for i, o in enumerate(opts) if len(o) > 1]
    heapq.heapify(heap)
    while total > budget and heap:
        _, i = heapq.heappop(heap)
        total -= opts[i][at[i]][1] - opts[i][at[i] + 1][1]
        at[i] += 1
        if at[i] + 1 < len(opts[i]):
            heapq.heappush(heap, (_loss_per_mac(opts[i], at[i]), i))
    return {c.name: opts[i][at[i]][0] for i, c in enumerate(cands) if opts[i][at[i]][0] != DENSE}


def _loss_per_mac(opts: list[tuple[int, int, float]], j: int) -> float:
    """Log-energy lost per MAC saved by the step from option j to j + 1."""
    return (opts[j][2] - opts[j + 1][2]) / (opts[j][1] - opts[j + 1][1])


SEARCHES = {"dp": select_dp, "greedy": select_greedy}


def select_ranks(cands: list[Candidate], energies: dict[str, list[float]], ratio: float,
                 dense_total: int, search: str = "dp") -> dict[str, int]:
    """Ranks for a ``ratio``× reduction of ``dense_total`` MACs (the layers counted in the
    target: all convs, plus the InnerProducts with --include-fc); layers that are not
    candidates keep their dense MACs inside that total."""
    if not ratio > 1:
        raise PrunekitError(f"--ratio {ratio:g}: expected a speedup greater than 1")
    if search not in SEARCHES:
        raise PrunekitError(f"--search '{search}': expected one of {', '.join(SEARCHES)}")
    fixed = dense_total - sum(c.dense_macs for c in cands)
    budget = dense_total / ratio - fixed
    check_budget(cands, budget, ratio, dense_total)
    return SEARCHES[search](cands, energies, budget)
