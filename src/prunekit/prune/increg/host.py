"""IncReg's whole per-iteration step for one layer's columns on the CPU, in one call.

For a ``Reg_Col`` layer whose weights live on the CPU, one call does what ``IncReg`` otherwise
does in three passes: the column L1 scores, ``increg/math.py: increg_step`` (ranks, λ, crossers) and
grad += λ⊙w. It runs in the compiled ``_increg_host`` module when that was built at install
(pip builds it with the system C compiler) and in NumPy otherwise; both do the same IEEE
operations in the same order, so a run's numbers do not depend on which one ran
(tests/prune/test_increg_host.py checks bit equality). Why: at LeNet-5 size the step is ~25 tiny
array operations per layer whose fixed per-call cost, not the arithmetic, was most of the
pruning overhead over plain SGD (benchmarks/prune_overhead.py).

Scores are summed row after row in float32 (NumPy's axis-0 order), not in torch's blocked order:
a deliberate choice, so that C and NumPy agree; on a GPU the scores still come from torch.
"""

from __future__ import annotations

import numpy as np

from prunekit.prune.increg.math import increg_step

try:  # built by `pip install` from _increg_host.c; without a compiler NumPy does the same
    from prunekit.prune.increg import _increg_host
except ImportError:  # pragma: no cover - depends on the install
    _increg_host = None

#: Which implementation ``col_step`` uses: "c" or "numpy".
BACKEND = "c" if _increg_host is not None else "numpy"


def column_scores(w: np.ndarray, cols: int) -> np.ndarray:
    """Σ over rows of |w| per column (float32, rows added one after another), ``w`` any shape
    whose size is a multiple of ``cols`` (Caffe's [N, C/g·kh·kw] matrix read row-major)."""
    a = np.abs(w.reshape(-1, cols))
    if cols == 1:  # a single column is NumPy's contiguous (pairwise) case: cumsum is sequential
        return np.cumsum(a, axis=0)[-1]
    return np.add.reduce(a, axis=0)


def col_step(w: np.ndarray, grad: np.ndarray | None, running_rank: np.ndarray, reg: np.ndarray,
             pruned: np.ndarray, table: np.ndarray, n_p: int, step: int, rank_start: int,
             target_eff: float, AA: float, scheme: dict,
             use_c: bool | None = None) -> tuple[int, np.ndarray, list[tuple[int, float, float]]]:
    """One IncReg step of one layer's columns: updates ``running_rank`` and ``reg`` (host float64)
    in place and, when ``grad`` is given, adds λ⊙w to it (a column pruned by this step adds w·0,
    as its weights are zeroed before the term in IncReg's device path).

    ``w``/``grad`` are float32 C-contiguous views of the CPU tensors; ``table`` is
    ``increment_table(...)`` for this layer (``scheme``/``AA`` are what it was made from, for
    the NumPy path). Returns (number newly pruned, their bool mask, the (group, old λ, new λ)
    entries whose λ fell). ``n_p`` must be positive. ``use_c`` forces a backend (tests).
    """
    step_impl = _STEP if use_c is None else (_col_step_c if use_c else _col_step_numpy)
    return step_impl(w, grad, running_rank, reg, pruned, table, n_p, step, rank_start,
                     target_eff, AA, scheme)


def _col_step_c(w, grad, running_rank, reg, pruned, table, n_p, step, rank_start, target_eff,
                AA, scheme):
    """col_step in the compiled module (``table`` carries AA and the scheme)."""
    newly = np.zeros(running_rank.size, dtype=bool)
    num_newly, reduced = _increg_host.col_step(
        w, grad, running_rank, reg, pruned, table, newly, n_p, step, rank_start, target_eff)
    return num_newly, newly, reduced


def _col_step_numpy(w, grad, running_rank, reg, pruned, table, n_p, step, rank_start,
                    target_eff, AA, scheme):
    """col_step in NumPy: the same IEEE operations in the same order as the C module."""
    cols = running_rank.size
    result = increg_step(column_scores(w, cols), running_rank, reg, pruned, n_p, step, AA,
                         target_eff, **scheme, rank_start=rank_start)
    reduced = result.reduced_entries()  # reads the old λ: before the in-place copy
    running_rank[:], reg[:] = result.running_rank, result.reg
    if grad is not None:
        w_term = np.where(result.newly_pruned, w.reshape(-1, cols) * np.float32(0.0),
                          w.reshape(-1, cols))
        g = grad.reshape(-1, cols)
        g += reg.astype(np.float32) * w_term
    return result.num_newly, result.newly_pruned, reduced


#: The backend, chosen once at import: the C module where it was built, else NumPy.
_STEP = _col_step_c if BACKEND == "c" else _col_step_numpy
