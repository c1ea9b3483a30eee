"""``Reg_Shape``: learning a smaller rectangular kernel by incremental regularisation.

The kernel-shape idea of Huan Wang's notes (docs/methods/kernel_shape.md) with IncReg's regulariser
(Wang et al., IJCNN 2019) instead of GL_Shape's group lasso. The groups are whole kernel rows
W[:, :, h, :] and columns W[:, :, :, w] of a 2-D convolution (one tap position across all filters
and channels). Only the **edges of the kept window** — its top and bottom row, left and right
column — are candidates, so every pruned group shrinks the dense kernel and ``prunekit compact``
can emit it (with a crop of the input where Caffe's symmetric pad cannot express it).

Every iteration from ``prune_begin_iter`` (0 when negative), for each layer not yet at its target:

1. score each candidate edge by its mean |w| (rows and columns differ in length);
2. rank the candidates (0 = weakest; stable, so ties go to top, bottom, left, right) and keep
   IncReg's running mean of the ranks since the window last changed;
3. raise each candidate's L2 factor λ by IncReg's scheme-1 increment Δ(mean rank) with one group
   to prune (Δ(0) = AA, Δ(1) = 0, negative beyond), never below 0, and add λ·w to its gradient;
4. the candidate whose λ reaches ``target_reg`` first is pruned (masked on weights, gradients and
   momentum), and λ and the ranks start again for the new window's edges.

A layer is done once its window keeps at most (1 − prune_ratio)·kh·kw taps; training then runs on
to ``max_iter`` with the masks hard, and the final snapshot is the result (as for the whole zoo).
λ is in the units of weight decay (per iteration, multiplied by the learning rate like
``weight_decay``); the iterations an edge takes are about ``target_reg / AA`` at the fastest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from prunekit.log import get_logger
from prunekit.prune.units import SHAPE
from prunekit.prune.increg.config import RegShapeConfig
from prunekit.prune.increg.math import scheme1_increment
from prunekit.prune.methods.kernel_shape import KernelShapeLasso, max_taps
from prunekit.prune.methods.mask_method import MaskedLayer

EDGES = ("top row", "bottom row", "left column", "right column")


@dataclass
class ShapeState:
    """One layer's window [r0, r1) × [c0, c1) and its four edges' λ and mean ranks."""

    window: list[int]
    lam: list[float] = field(default_factory=lambda: [0.0] * 4)
    rank_mean: list[float] = field(default_factory=lambda: [0.0] * 4)
    steps: int = 0
    done: bool = False

    def taps(self) -> int:
        r0, r1, c0, c1 = self.window
        return (r1 - r0) * (c1 - c0)

    def valid(self) -> list[bool]:
        """An edge can go while its dimension keeps at least one tap."""
        r0, r1, c0, c1 = self.window
        return [r1 - r0 > 1] * 2 + [c1 - c0 > 1] * 2

    def edge_slices(self) -> list[tuple[slice, slice]]:
        """(rows, columns) of the kernel each edge covers."""
        r0, r1, c0, c1 = self.window
        rows, cols = slice(r0, r1), slice(c0, c1)
        return [(slice(r0, r0 + 1), cols), (slice(r1 - 1, r1), cols),
                (rows, slice(c0, c0 + 1)), (rows, slice(c1 - 1, c1))]

    def drop(self, edge: int) -> None:
        delta = (1, -1, 1, -1)[edge]
        self.window[edge] += delta
        self.lam, self.rank_mean, self.steps = [0.0] * 4, [0.0] * 4, 0


def edge_scores(tap_l1: np.ndarray, state: ShapeState) -> np.ndarray:
    """Mean |w| of each edge from the per-tap L1 sums ([kh, kw], over filters and channels)."""
    return np.array([tap_l1[rows, cols].mean() for rows, cols in state.edge_slices()])


def ranks(scores: np.ndarray, valid: list[bool]) -> np.ndarray:
    """Rank of each valid edge among the valid ones (0 = weakest); invalid edges get −1."""
    out = np.full(4, -1.0)
    order = [i for i in np.argsort(scores, kind="stable") if valid[i]]
    for rank, i in enumerate(order):
        out[i] = rank
    return out


class KernelShapeIncReg(KernelShapeLasso):
    """Reg_Shape as a solver hook; layer checks and the [app] kernel text come from GL_Shape."""

    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("Reg", "Reg-rank")
    CONFIG = RegShapeConfig
    UNITS = (SHAPE,)

    def __init__(self, config, solver, net_param, out=None) -> None:
        super().__init__(config, solver, net_param, out)
        self.states = [ShapeState([0, int(layer.weight.shape[2]), 0, int(layer.weight.shape[3])])
                       for layer in self.layers]

    def max_taps(self, layer: MaskedLayer) -> int:
        return max_taps(layer.prune_ratio, *layer.weight.shape[2:])

    # ------------------------------------------------------------------ hooks
    def on_start(self, solver) -> None:
        targets = ", ".join(f"{layer.name} <= {self.max_taps(layer)} taps" for layer in self.layers)
        self.emit(f"[app] {self.config.prune_method}: {len(self.layers)} layers ({targets}), from "
                  f"iteration {self.begin}, AA {self.config.aa:g}, target_reg "
                  f"{self.config.target_reg:g}")
        for layer, state in zip(self.layers, self.states):
            state.done = state.done or state.taps() <= self.max_taps(layer)

    def before_forward(self, solver) -> None:
        """No rounds: Reg_Shape prunes inside the update (penalise)."""

    def penalise(self, solver) -> None:
        if solver.iter < self.begin:
            return
        for layer, state in zip(self.layers, self.states):
            if not state.done and layer.weight.grad is not None:
                self._step(solver, layer, state)

    def _step(self, solver, layer: MaskedLayer, state: ShapeState) -> None:
        w = layer.weight.detach()
        tap_l1 = w.abs().sum(dim=(0, 1), dtype=torch.float64).cpu().numpy()
        valid = state.valid()
        rank = ranks(edge_scores(tap_l1, state), valid)
        state.steps += 1
        for i in range(4):
            if valid[i]:
                state.rank_mean[i] += float(rank[i] - state.rank_mean[i]) / state.steps
                step = float(scheme1_increment(np.array([state.rank_mean[i]]), 1,
                                               self.config.aa, self.config.kk)[0])
                state.lam[i] = max(0.0, state.lam[i] + step)
        for i, (rows, cols) in enumerate(state.edge_slices()):
            if valid[i] and state.lam[i] > 0:
                layer.weight.grad[:, :, rows, cols].add_(w[:, :, rows, cols], alpha=state.lam[i])
        reached = [i for i in range(4) if valid[i] and state.lam[i] >= self.config.target_reg]
        if reached:
            self._prune_edge(solver, layer, state, max(reached, key=lambda i: state.lam[i]))

    def _prune_edge(self, solver, layer: MaskedLayer, state: ShapeState, edge: int) -> None:
        lam = state.lam[edge]
        state.drop(edge)
        r0, r1, c0, c1 = state.window
        keep = torch.zeros(layer.weight.shape[2:], dtype=torch.bool, device=layer.weight.device)
        keep[r0:r1, c0:c1] = True
        layer.mask = keep.expand_as(layer.weight).to(layer.weight.dtype)
        layer.shape_kept = (r1 - r0, c1 - c0)
        layer.weight.mul_(layer.mask)
        solver.history[layer.blob_index].mul_(layer.mask)
        state.done = state.taps() <= self.max_taps(layer)
        self.emit(f"[app] iter {solver.iter}: {layer.name} prunes its kernel {EDGES[edge]} "
                  f"(lambda {lam:.4g}) -> kernel {r1 - r0}x{c1 - c0}, rows {r0}..{r1 - 1}, "
                  f"columns {c0}..{c1 - 1}" + (" (target reached)" if state.done else ""))
        if state.done and all(s.done for s in self.states):
            self.emit(f"[app] {self.config.prune_method}: every layer reached its kernel target "
                      f"at iter {solver.iter}; retraining to max_iter")

    def on_snapshot(self, solver, tag: str, paths: tuple[str, str]) -> None:
        if tag or solver.iter < solver.param.max_iter:
            return
        kernels = []
        for layer, state in zip(self.layers, self.states):
            r0, r1, c0, c1 = state.window
            kernels.append(f"{layer.name} {r1 - r0}x{c1 - c0}")
            kept = int(layer.weight.detach().count_nonzero())
            self.emit(f"[app] final {layer.name}: {kept}/{layer.weight.numel()} nonzero weights, "
                      f"kernel {r1 - r0}x{c1 - c0}" + ("" if state.done else " (target NOT reached)"))
        get_logger().info("Pruning done. Final model: %s (%s, kernels %s)", paths[0],
                          self.config.prune_method, ", ".join(kernels))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        state = super().state_dict()
        state["shape"] = [{"window": list(s.window), "lam": list(s.lam),
                           "rank_mean": list(s.rank_mean), "steps": s.steps, "done": s.done}
                          for s in self.states]
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.states = [ShapeState([int(v) for v in s["window"]], [float(v) for v in s["lam"]],
                                  [float(v) for v in s["rank_mean"]], int(s["steps"]),
                                  bool(s["done"]))
                       for s in state.get("shape", [])] or self.states
