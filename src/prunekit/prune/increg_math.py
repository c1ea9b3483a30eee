"""Numerical core of IncReg (Wang et al., "Structured Pruning for Efficient ConvNets via Incremental
Regularization", 2019), as in Caffe_IncReg ``Reg_Col`` (reference sections 2.3 and 2.4).

Everything here works on **one layer's groups** (columns for the Col unit, rows for the Row unit;
the math is the same). Per-group state is a 1-D float tensor of length G plus a bool ``pruned``
mask; any float dtype and device. No solver or net dependencies, no Python loops over groups.

Ties: every sort is **stable** (``torch.sort(..., stable=True)``), so among equal keys the group
with the lower index comes first. The original used an unstable sort, whose tie order is arbitrary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Upper bound on the exponent in the increment curves. exp(50) ≈ 5e21 is finite in float32, so
#: Δ(j) stays finite (and hugely negative) for any rank j instead of overflowing to −inf.
MAX_EXPONENT = 50.0

#: Offset that keeps pruned groups at the far left of the running-rank order (reference 2.4).
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

def float_ranks(j) -> torch.Tensor:
    """Ranks as a float tensor: j's own float dtype, or float64 for integer input."""
    j = torch.as_tensor(j)
    return j if j.is_floating_point() else j.to(torch.float64)


def scheme1_increment(j, n_p: int, AA: float, kk: float = 0.25) -> torch.Tensor:
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
    head = AA * torch.exp(-alpha * j)
    tail = 2.0 * kk * AA - AA * torch.exp((alpha * (j - 2.0 * n1)).clamp(max=MAX_EXPONENT))
    # Rounding leaves ±1e-16·AA at j = n_p; make Δ(n_p) exactly 0 and Δ(j > n_p) never positive,
    # so the group at j = n_p does not creep up.
    tail = torch.where(j >= n_p, tail.clamp(max=0.0), tail).masked_fill(j == n_p, 0.0)
    return torch.where(j < n1, head, tail)


def scheme2_increment(j, n_p: int, n_unpruned: int, AA: float, kk2: float) -> torch.Tensor:
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
    head = AA * torch.exp((-alpha1 * j).clamp(max=MAX_EXPONENT))
    tail = -AA * torch.exp((-alpha2 * (n_unpruned - 1 - j)).clamp(max=MAX_EXPONENT))
    return torch.where(j < n_p, head, tail)


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


def columns_to_prune(num_groups: int, current_prune_ratio: float, num_pruned: float) -> int:
    """n_p = ceil(G · ratio) − floor(num_pruned): groups still to prune in this stage (may be ≤ 0).

    Both terms are first snapped to the nearest integer when within a relative 1e-6 of it, so that
    float error does not add a group: 25·0.9 = 22.5 → 23, but 500·float32(0.3) = 150.000006 → 150
    and 100·0.07 = 7.000000000000001 → 7. ``num_pruned`` may be fractional (mask rebuild of a
    grouped conv counts 1/group per group); the fork truncates it, as floor does here.
    """
    wanted = math.ceil(_snap(num_groups * float(current_prune_ratio)))
    return wanted - math.floor(_snap(float(num_pruned)))


# --------------------------------------------------------------------------- one iteration

@dataclass
class IncRegStepResult:
    """Outcome of increg_step for one layer. The inputs are never modified (when ``skipped``,
    the input tensors themselves are returned).

    ``reduced`` marks unpruned groups whose λ fell this step (``reg_before`` holds the old values),
    for the fork's ``reduce reg: <layer>-<col>   old reg: <old>   new reg: <new>`` line.
    ``skipped`` is True when n_p ≤ 0: nothing changed (the fork prints
    ``BUG: num_col_to_prune_ = <n_p>`` and applies no reg to the layer this iteration).
    ``j`` is each unpruned group's importance rank (0 = least important), −1 for pruned groups.
    """

    running_rank: torch.Tensor
    reg: torch.Tensor
    pruned: torch.Tensor
    newly_pruned: torch.Tensor
    reduced: torch.Tensor
    reg_before: torch.Tensor
    j: torch.Tensor
    skipped: bool = False

    def reduced_entries(self) -> list[tuple[int, float, float]]:
        """(group index, old λ, new λ) for every group whose λ fell, by increasing index."""
        idx = torch.nonzero(self.reduced).flatten()
        return list(zip(idx.tolist(), self.reg_before[idx].tolist(), self.reg[idx].tolist()))


def stable_ascending_rank(key: torch.Tensor, pruned: torch.Tensor) -> torch.Tensor:
    """Position of each group in the stable ascending sort of ``key`` with pruned groups first.

    Unpruned groups get positions num_pruned .. G−1 (the fork's layout: pruned groups carry a
    large negative score and sort first); ties go to the lower index.
    """
    key = torch.where(pruned, torch.full_like(key, -math.inf), key)
    order = torch.sort(key, stable=True).indices
    pos = torch.empty_like(order)
    pos[order] = torch.arange(key.numel(), device=key.device)
    return pos


def increg_step(scores: torch.Tensor, running_rank: torch.Tensor, reg: torch.Tensor,
                pruned: torch.Tensor, n_p: int, step: int, AA: float, target_eff: float,
                scheme: int = 1, kk: float = 0.25, kk2: float | None = None,
                rank_start: int = 0, rank_window: int | None = None) -> IncRegStepResult:
    """One IncReg iteration for one layer (reference 2.3–2.4).

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
    Units: scores in weight units, H in ranks, λ/AA/target_eff in regularisation units.
    """
    if n_p <= 0:
        none = torch.zeros_like(pruned)
        return IncRegStepResult(running_rank, reg, pruned, none, none, reg,
                                torch.full_like(running_rank, -1, dtype=torch.long), skipped=True)
    if scheme not in (1, 2):
        raise ValueError(f"increg_step: scheme must be 1 or 2 (got {scheme})")
    if scheme == 2 and kk2 is None:
        raise ValueError("increg_step: scheme 2 needs kk2 (see scheme2_kk)")
    unpruned = ~pruned
    num_pruned = pruned.sum()                                   # tensor: no host sync here

    rk = stable_ascending_rank(scores.to(reg.dtype), pruned).to(reg.dtype)
    m = max(step - rank_start, 1)
    if rank_window is not None:
        m = min(m, max(int(rank_window), 1))
    h = torch.where(unpruned, ((m - 1) * running_rank + rk) / m, running_rank)

    j = stable_ascending_rank(h, pruned) - num_pruned          # 0.. for unpruned, < 0 for pruned
    jf = j.clamp(min=0).to(reg.dtype)
    if scheme == 1:
        delta = scheme1_increment(jf, n_p, AA, kk)
    else:
        delta = scheme2_increment(jf, n_p, reg.numel() - int(num_pruned), AA, kk2)
    new_reg = torch.where(unpruned, (reg + delta).clamp(min=0.0), reg)
    reduced = unpruned & (new_reg < reg)

    # Prune the crossers, at most n_p of them, lowest j first (j is unique, pruned ones < 0).
    crossed = unpruned & (new_reg >= target_eff)
    order = torch.argsort(j)
    crossed_sorted = crossed[order]
    newly = torch.zeros_like(pruned)
    newly[order] = crossed_sorted & (torch.cumsum(crossed_sorted.long(), 0) <= n_p)
    h = torch.where(newly, step - PRUNED_RANK_OFFSET - (new_reg - target_eff), h)

    return IncRegStepResult(h, new_reg, pruned | newly, newly, reduced, reg,
                            torch.where(unpruned, j, torch.full_like(j, -1)))
