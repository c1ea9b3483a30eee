"""Numerical core of IncReg (Wang et al., "Structured Pruning for Efficient ConvNets via Incremental
Regularization", 2019), as in Caffe_IncReg ``Reg_Col`` (docs/pruning.md "IncReg: one iteration of one layer").

Everything here works on **one layer's groups** (columns for the Col unit, rows for the Row unit;
the math is the same). Per-group state is a 1-D float NumPy array of length G plus a bool
``pruned`` array, on the host (torch CPU tensors are accepted and read through ``np.asarray``).
No solver or net dependencies, no Python loops over groups.

Why NumPy on the host: a layer has tens to a few thousand groups, so one step is a few dozen
small array operations, each costing 5-10 µs as a torch call but 1-2 µs as a NumPy call (warm
caches); the fork did this bookkeeping in host C++ code too. The caller brings the group scores
over once per step (IncReg._regularise_all).

Ties: every sort is **stable** (``np.argsort(..., kind="stable")``), so among equal keys the group
with the lower index comes first. The original used an unstable sort, whose tie order is arbitrary.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

#: Upper bound on the exponent in the increment curves. exp(50) ≈ 5e21 is finite in float32, so
#: Δ(j) stays finite (and hugely negative) for any rank j instead of overflowing to −inf.
MAX_EXPONENT = 50.0

#: Offset that keeps pruned groups at the far left of the running-rank order (docs/pruning.md "IncReg: one iteration of one layer").
PRUNED_RANK_OFFSET = 1_000_000.0

#: Relative tolerance for snapping ``G × ratio`` to an integer before ``ceil``
#: (see columns_to_prune).
RATIO_SNAP_RTOL = 1e-6


# --------------------------------------------------------------------------- effective target reg

def target_multiplier(incre_pr: float, bottom: float = 0.25, standard: float = 0.05,
                      bottomline: float = 0.01) -> float:
    """Scaled sigmoid M(x) = 3·(σ(k·(x − standard)) − 0.5) + 1 applied to the stage increment x.

    k = ln(1/y0 − 1) / (standard − bottomline), y0 = (bottom − 1)/3 + 0.5, so that
    M(bottomline) = bottom, M(standard) = 1 and M(∞) = 2.5. Defaults are the fork's constants
    (TR_MUL_BOTTOM, STANDARD_INCRE_PR, INCRE_PR_BOTTOMLINE): M(0.01) = 0.25, M(0.05) = 1,
    M(0.2) ≈ 2.452, k ≈ 27.465. Dimensionless.
    """
    y0 = (bottom - 1.0) / 3.0 + 0.5
    if not 0.0 < y0 < 0.5 or standard <= bottomline:
        raise ValueError(f"target_multiplier: need -0.5 < bottom < 1 and standard > bottomline "
                         f"(got bottom={bottom}, standard={standard}, bottomline={bottomline})")
    k = math.log(1.0 / y0 - 1.0) / (standard - bottomline)
    z = k * (incre_pr - standard)
    sig = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
    return 3.0 * (sig - 0.5) + 1.0


def effective_target_reg(target_reg: float, incre_pr: float, cap: float = 10.0,
                         bottom: float = 0.25, standard: float = 0.05,
                         bottomline: float = 0.01) -> float:
    """target_reg_eff = min(target_reg · M(incre_pr), cap), in the units of λ (same as AA).

    The fork evaluates this at start-up with incre_pr = 0.2, i.e. 2.452 × the configured value.
    """
    return min(target_reg * target_multiplier(incre_pr, bottom, standard, bottomline), cap)


# --------------------------------------------------------------------------- increments Δ(j)

def float_ranks(j: ArrayLike) -> np.ndarray:
    """Ranks as a float array: j's own float dtype, or float64 for integer (or bool) input."""
    j = np.asarray(j)
    return j if np.issubdtype(j.dtype, np.floating) else j.astype(np.float64)


def scheme1_increment(j: ArrayLike, n_p: int, AA: float, kk: float = 0.25) -> np.ndarray:
    """Scheme 1 (centre-symmetric exponential, SPP/IncReg papers) Δ(j) for ranks j (0 = least
    important), in units of λ per iteration.

    α = ln(2/kk)/n_p, N1 = −ln(kk)/α;
    Δ(j) = AA·e^(−αj) for j < N1, else 2·kk·AA − AA·e^(−α(2N1−j)).
    Δ(0) = AA, Δ(N1) = kk·AA, Δ(n_p) = 0 (exactly), Δ < 0 beyond n_p (−3.5·AA at 2·n_p for
    kk = 0.25).
    The exponent is clamped to MAX_EXPONENT, so Δ is finite (constant) for very large j.
    """
    if n_p <= 0:
        raise ValueError(f"scheme1_increment: n_p must be positive (got {n_p})")
    if not 0.0 < kk < 1.0:
        raise ValueError(f"scheme1_increment: kk must be in (0, 1) (got {kk})")
    j = float_ranks(j)
    alpha = math.log(2.0 / kk) / n_p
    n1 = -math.log(kk) / alpha
    head = AA * np.exp(-alpha * j)
    tail = 2.0 * kk * AA - AA * np.exp(np.minimum(alpha * (j - 2.0 * n1), MAX_EXPONENT))
    # Rounding leaves ±1e-16·AA at j = n_p; make Δ(n_p) exactly 0 and Δ(j > n_p) never positive,
    # so the group at j = n_p does not creep up.
    tail = np.where(j >= n_p, np.minimum(tail, 0.0), tail)
    tail[j == n_p] = 0.0
    return np.where(j < n1, head, tail)


def scheme2_increment(j: ArrayLike, n_p: int, n_unpruned: int, AA: float, kk2: float) -> np.ndarray:
    """Scheme 2 (discontinuous two-sided exponential) Δ(j), in units of λ per iteration.

    α1 = ln(1/kk2)/(n_p − 1) (0 if n_p = 1), α2 = ln(1/kk2)/(N − 1 − n_p) (0 if that is ≤ 0),
    N = n_unpruned;  Δ(j) = AA·e^(−α1·j) for j < n_p, else −AA·e^(−α2·(N − 1 − j)).
    Runs from +AA to +kk2·AA at j = n_p − 1, jumps to −kk2·AA at j = n_p, reaches −AA at j = N − 1.
    """
    if n_p <= 0:
        raise ValueError(f"scheme2_increment: n_p must be positive (got {n_p})")
    if not 0.0 < kk2 <= 1.0:
        raise ValueError(f"scheme2_increment: kk2 must be in (0, 1] (got {kk2})")
    j = float_ranks(j)
    log_inv = math.log(1.0 / kk2)
    alpha1 = log_inv / (n_p - 1) if n_p > 1 else 0.0
    denom2 = n_unpruned - 1 - n_p
    alpha2 = log_inv / denom2 if denom2 > 0 else 0.0
    head = AA * np.exp(np.minimum(-alpha1 * j, MAX_EXPONENT))
    tail = -AA * np.exp(np.minimum(-alpha2 * (n_unpruned - 1 - j), MAX_EXPONENT))
    return np.where(j < n_p, head, tail)


def stage_progress(pruned_ratio: float, current_prune_ratio: float,
                   last_feasible_prune_ratio: float = 0.0) -> float:
    """Stage progress (pruned − last_feasible)/(current − last_feasible), clipped to [0, 1].

    A stage with current ≤ last_feasible has nothing to prune and counts as done (1.0); the fork
    would divide by zero there. The clip is ours too (the fork never needs it: a layer past its
    target has finished and gets no reg).
    """
    span = current_prune_ratio - last_feasible_prune_ratio
    if span <= 0:
        return 1.0
    return min(max((pruned_ratio - last_feasible_prune_ratio) / span, 0.0), 1.0)


def scheme2_kk(progress: float, scale: float = 0.75, floor: float = 0.05) -> float:
    """kk2 = max(scale · progress, floor): the scheme-2 shape parameter, from stage_progress()."""
    return max(scale * progress, floor)


# --------------------------------------------------------------------------- how many to prune

def _snap(x: float) -> float:
    """x, or the nearest integer when within RATIO_SNAP_RTOL·max(1, |x|) of it."""
    nearest = round(x)
    return float(nearest) if abs(x - nearest) <= RATIO_SNAP_RTOL * max(1.0, abs(x)) else x


@functools.lru_cache(maxsize=256)
def columns_to_prune(num_groups: int, current_prune_ratio: float, num_pruned: float) -> int:
    """n_p = ceil(G · ratio) − floor(num_pruned): groups still to prune in this stage (may be ≤ 0).

    Both terms are first snapped to the nearest integer when within a relative 1e-6 of it, so that
    float error does not add a group: 25·0.9 = 22.5 → 23, but 500·float32(0.3) = 150.000006 → 150
    and 100·0.07 = 7.000000000000001 → 7. ``num_pruned`` may be fractional (mask rebuild of a
    grouped conv counts 1/group per group); the fork truncates it, as floor does here.
    Cached: a pure function, called every iteration for every layer with the same arguments.
    """
    wanted = math.ceil(_snap(num_groups * float(current_prune_ratio)))
    return wanted - math.floor(_snap(float(num_pruned)))


# --------------------------------------------------------------------------- one iteration

@dataclass
class IncRegStepResult:
    """Outcome of increg_step for one layer, as host NumPy arrays. The inputs are never modified
    (when ``skipped``, the input arrays themselves are returned).

    ``reduced`` marks unpruned groups whose λ fell this step (``reg_before`` holds the old values),
    for the fork's ``reduce reg: <layer>-<col>   old reg: <old>   new reg: <new>`` line.
    ``skipped`` is True when n_p ≤ 0: nothing changed (the fork prints
    ``BUG: num_col_to_prune_ = <n_p>`` and applies no reg to the layer this iteration).
    ``num_newly`` counts ``newly_pruned`` (a host integer: the caller tests it every iteration).
    ``pruned`` (after the step) and ``j``, each unpruned group's importance rank (0 = least
    important) and −1 for pruned groups, are worked out when read: the solver hook needs neither.
    """

    running_rank: np.ndarray
    reg: np.ndarray
    pruned_before: np.ndarray
    newly_pruned: np.ndarray
    reduced: np.ndarray
    reg_before: np.ndarray
    ranks: np.ndarray               # j for unpruned groups; below 0 (any value) for pruned ones
    skipped: bool = False
    num_newly: int = 0

    @property
    def pruned(self) -> np.ndarray:
        """Pruned flags after the step (``pruned_before`` itself when none was pruned)."""
        return self.pruned_before | self.newly_pruned if self.num_newly else self.pruned_before

    @property
    def j(self) -> np.ndarray:
        """Importance rank of each unpruned group (0 = least important), −1 for pruned ones."""
        return np.where(self.pruned_before, -1, self.ranks)

    def reduced_entries(self) -> list[tuple[int, float, float]]:
        """(group index, old λ, new λ) for every group whose λ fell, by increasing index."""
        idx = np.flatnonzero(self.reduced)
        if not idx.size:
            return []
        return list(zip(idx.tolist(), self.reg_before[idx].tolist(), self.reg[idx].tolist()))


def stable_ascending_rank(key: np.ndarray, pruned: np.ndarray | None, first: int = 0,
                          dtype: DTypeLike = np.int64) -> np.ndarray:
    """Position of each group in the stable ascending sort of ``key`` with pruned groups first,
    counted from ``first``, as ``dtype`` (the caller's float dtype saves a conversion).

    Unpruned groups get positions first + num_pruned .. first + G − 1 (the fork's layout: pruned
    groups carry a large negative score and sort first); ties go to the lower index. ``pruned``
    None means that no group is pruned (one array pass less).
    """
    if pruned is not None:
        key = np.where(pruned, -np.inf, key)
    order = np.argsort(key, kind="stable")
    pos = np.empty(order.size, dtype=dtype)
    pos[order] = np.arange(first, first + order.size, dtype=dtype)
    return pos


@functools.lru_cache(maxsize=64)
def increment_table(scheme: int, n_unpruned: int, n_p: int, AA: float, kk: float | None,
                    kk2: float | None, dtype: str) -> np.ndarray:
    """Δ(j) for j = 0 .. n_unpruned − 1 (at least one entry), read-only, in λ per iteration.

    The ranks j of the unpruned groups are always exactly 0 .. n_unpruned − 1, and the curve
    changes only when groups are pruned (n_p, n_unpruned, kk2), so one table per layer and stage
    serves every iteration: Δ(j) is then one lookup instead of ~15 array operations.
    """
    j = np.arange(max(n_unpruned, 1), dtype=dtype)
    table = (scheme1_increment(j, n_p, AA, kk) if scheme == 1
             else scheme2_increment(j, n_p, n_unpruned, AA, kk2))
    table.setflags(write=False)
    return table


def select(mask: np.ndarray | None, new: ArrayLike, old: ArrayLike) -> np.ndarray:
    """``np.where(mask, new, old)``, or ``new`` itself when ``mask`` is None (every group)."""
    return np.asarray(new) if mask is None else np.where(mask, new, old)


def lowest_ranked(candidates: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Bool mask: the ``n`` groups of the bool mask ``candidates`` with the lowest rank ``j``."""
    idx = np.flatnonzero(candidates)
    keep = np.zeros_like(candidates)
    keep[idx[np.argsort(j[idx], kind="stable")[:n]]] = True
    return keep


def increg_step(scores: ArrayLike, running_rank: ArrayLike, reg: ArrayLike, pruned: ArrayLike,
                n_p: int, step: int, AA: float, target_eff: float, scheme: int = 1,
                kk: float = 0.25, kk2: float | None = None, rank_start: int = 0,
                rank_window: int | None = None) -> IncRegStepResult:
    """One IncReg iteration for one layer (docs/pruning.md "IncReg: one iteration of one layer"), on host arrays.

    1. rk = stable ascending position of ``scores`` (group L1 norms) with pruned groups first.
    2. Running mean rank of unpruned groups: H ← ((m−1)·H + rk)/m with m = step − rank_start
       (step = iter + 1). Default rank_start = 0 is the fork (mean since iteration 0); pass the
       stage's first iteration to average within the stage. ``rank_window`` = W caps m at W, which
       turns the mean into an EMA with weight 1/W once W steps have passed.
    3. j = stable ascending rank of H among unpruned groups (0 = least important).
    4. λ ← max(λ + Δ(j), 0) with Δ from scheme 1 (kk) or scheme 2 (kk2, see scheme2_kk).
    5. Groups with λ ≥ target_eff are pruned, at most n_p of them (the lowest j; with a fixed
       target at most n_p can cross anyway, since Δ(j) ≤ 0 for j ≥ n_p). A pruned group gets
       H = step − 1e6 − (λ − target_eff), which keeps it left of all others, ordered by prune time.
    Units: scores in weight units, H in ranks, λ/AA/target_eff in regularisation units. H and λ
    keep ``reg``'s float dtype (float64 in a run); ``scores`` may be any float dtype. Every call
    is a few dozen small array operations: it runs every iteration for every pruned layer.
    """
    running_rank, reg, pruned = np.asarray(running_rank), np.asarray(reg), np.asarray(pruned)
    if n_p <= 0:
        none = np.zeros_like(pruned)
        return IncRegStepResult(running_rank, reg, pruned, none, none, reg,
                                np.full(reg.shape, -1, dtype=np.int64), skipped=True)
    if scheme not in (1, 2):
        raise ValueError(f"increg_step: scheme must be 1 or 2 (got {scheme})")
    if scheme == 2 and kk2 is None:
        raise ValueError("increg_step: scheme 2 needs kk2 (see scheme2_kk)")
    num_pruned = int(np.count_nonzero(pruned))
    # While no group is pruned (each run's first iterations) the masking passes are skipped.
    pruned_or_none = pruned if num_pruned else None
    unpruned = ~pruned if num_pruned else None

    key = np.asarray(scores)
    if key.dtype.itemsize > reg.dtype.itemsize:  # narrower scores rank the same as widened ones
        key = key.astype(reg.dtype)
    rk = stable_ascending_rank(key, pruned_or_none, dtype=reg.dtype)
    m = max(step - rank_start, 1)
    if rank_window is not None:
        m = min(m, max(int(rank_window), 1))
    h = select(unpruned, ((m - 1) * running_rank + rk) / m, running_rank)

    j = stable_ascending_rank(h, pruned_or_none, first=-num_pruned)  # unpruned 0.., pruned < 0
    shape = (kk, None) if scheme == 1 else (None, kk2)
    table = increment_table(scheme, reg.size - num_pruned, n_p, AA, *shape, reg.dtype.str)
    delta = np.take(table, j, mode="clip")                    # pruned (j < 0) read Δ(0), unused
    new_reg = select(unpruned, np.maximum(reg + delta, 0.0), reg)
    reduced = new_reg < reg                                   # pruned groups keep λ exactly

    # Prune the crossers, at most n_p of them, lowest j first (j is unique, pruned ones < 0).
    newly = select(unpruned, new_reg >= target_eff, False)
    num_newly = int(np.count_nonzero(newly))
    if num_newly > n_p:
        newly, num_newly = lowest_ranked(newly, j, n_p), n_p
    if num_newly:
        h = np.where(newly, step - PRUNED_RANK_OFFSET - (new_reg - target_eff), h)

    return IncRegStepResult(h, new_reg, pruned, newly, reduced, reg, j, num_newly=num_newly)
