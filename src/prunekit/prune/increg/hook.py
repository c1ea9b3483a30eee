"""IncReg (``Reg_Col``, ``Reg_Row``): incremental regularisation inside the SGD solver.

Wang et al., "Structured Pruning for Efficient ConvNets via Incremental Regularization"
(IJCNN 2019 / NIPS-W 2018). Each group (column or row of Caffe's weight matrix) of a layer gets
its own L2 factor λ, raised a little every iteration by an amount Δ(j) that falls with the
group's importance rank j (a running mean of L1-norm ranks). A group whose λ reaches the
effective target is pruned: masked on weights, gradients and momentum. The per-iteration
formulas live in ``increg/math.py``; the run schedule (prune → losseval → retrain → stage check)
in ``schedule``, which returns decisions (``decisions.py``) that this class applies through the
solver. This class keeps the per-layer state and applies it at the solver's hooks.

Every iteration costs, per pruned layer, one reduction on the weights' device for the group
scores, one copy of them to the host, the ranking and λ update in NumPy there, and one λ⊙w term
added to the gradient; the hooks skip their masks (and torch's no_grad switch) while a layer has
nothing pruned. ``benchmarks/prune_overhead.py`` measures what that costs next to plain SGD.
"""

from __future__ import annotations

import sys
from typing import TextIO

import numpy as np
import torch

from prunekit.prune.units import COL, ROW
from prunekit.prune import app_log, groups
from prunekit.prune.increg import host as increg_host
from prunekit.prune.increg.config import RegConfig, StageConfig
from prunekit.prune.increg.decisions import apply_decisions
from prunekit.prune.increg.math import (
    columns_to_prune, effective_target_reg, increg_step, increment_table, scheme2_kk,
    stage_progress)
from prunekit.prune.layer_state import NEVER, PrunedLayer
from prunekit.prune.increg.progress import PrunedRatios, layer_costs, prune_progress
from prunekit.prune.propagation import Propagator
from prunekit.prune.increg.schedule import Schedule
from prunekit.solver.hooks import SolverHook


class IncReg(SolverHook):
    """The ``Reg`` method as a solver hook (one object for the whole net)."""

    #: prune_method spellings of the method part, and the units it prunes (prune/units.py).
    ALIASES = ("Reg", "Reg-rank")
    CONFIG = RegConfig
    UNITS = (COL, ROW)

    name = "pruning"

    def __init__(self, config: StageConfig, solver, net_param, out: TextIO | None = None) -> None:
        self.config = config
        self.unit = config.unit
        self.out = out or sys.stdout
        self.layers = _make_layers(config, solver, net_param)
        self.costs = layer_costs(solver.net)
        self.propagator = Propagator(solver.net, self.layers, config, self.out)
        self.target_eff = self.target_for(config.prune_ratio_begin_ave)
        self.speedup_achieved = False
        self._progress_stale = True
        self._resumed = False  # set when --snapshot loaded the saved masks
        self.schedule = Schedule(self, config, self.out)

    # ------------------------------------------------------------------ helpers
    def progress_changed(self) -> None:
        """Groups were pruned or restored (a rollback): the speedup is recomputed before the next
        step. The schedule calls it after every rollback and new stage."""
        self._progress_stale = True

    def set_stage_increment(self, incre_pr: float) -> None:
        """A new stage of average increment ``incre_pr``: the effective target λ follows it."""
        self.target_eff = self.target_for(incre_pr)

    def target_for(self, incre_pr: float) -> float:
        """The effective target λ of a stage of average increment ``incre_pr`` (docs/pruning.md)."""
        c = self.config
        return effective_target_reg(c.target_reg, incre_pr, cap=c.target_reg_cap,
                                    bottom=c.tr_mul_bottom, standard=c.standard_incre_pr,
                                    bottomline=c.incre_pr_bottomline)

    def progress(self):
        ratios = [PrunedRatios(layer.pruned_ratio_col(), layer.pruned_ratio_row())
                  for layer in self.layers]
        return prune_progress(self.costs, ratios, speedup_count_fc=self.config.if_speedup_count_fc,
                              compr_count_conv=self.config.if_compr_count_conv)

    def emit(self, text: str) -> None:
        app_log.emit(self.out, text)

    # ------------------------------------------------------------------ solver hooks
    def on_start(self, solver) -> None:
        if not self._resumed:  # --weights: masks from exact zeros, as the fork did
            for layer in self.layers:
                layer.rebuild_from_zeros()
        self._init_group_state()
        apply_decisions(self.schedule.on_start(solver), solver)

    def _init_group_state(self) -> None:
        """λ = 0 and running ranks for groups that have none yet (a resume keeps its own)."""
        for layer in self.layers:
            layer.ensure_group_state(self.unit)

    def before_forward(self, solver) -> None:
        if self.propagator.apply_pending():
            self._progress_stale = True
        self._check_finished(solver)
        if self.config.prune_log_verbose:
            self._summary_lines(solver)

    def _summary_lines(self, solver) -> None:
        """The fork's per-iteration line per layer (``prune_log_verbose: true`` only)."""
        lr = solver.control.lr(solver.rate)
        for layer in self.layers:
            self.emit(app_log.layer_summary(
                layer.name, layer.prune_ratio > 0, self.unit, layer.ratio_for(self.unit),
                self.unit.num_pruned(layer),
                layer.current_prune_ratio, layer.iter_prune_finished, self.schedule.state, lr,
                solver.control.extra_iter_size, self.target_eff))

    # Gradients and momentum histories do not require grad, so their in-place masks need no
    # torch.no_grad() (which would cost a few µs per hook call, every iteration).
    def after_backward(self, solver) -> None:
        for layer in self.layers:
            if layer.has_pruned and layer.weight.grad is not None:
                layer.weight.grad.mul_(layer.mask)

    def before_update(self, solver) -> None:
        if self.schedule.state == "prune":
            self._regularise_all(solver, [layer for layer in self.layers if layer.prune_ratio > 0
                                          and layer.iter_prune_finished == NEVER])
        for layer in self.layers:
            if layer.has_pruned:
                if layer.weight.grad is not None:
                    layer.weight.grad.mul_(layer.mask)
                solver.history[layer.blob_index].mul_(layer.mask)

    def after_update(self, solver) -> None:
        for layer in self.layers:
            if layer.has_pruned:
                layer.apply_mask_()
        solver.control.freeze_lr(solver.rate)  # the fork freezes the lr at its first value
        apply_decisions(self.schedule.after_update(solver), solver)

    def on_snapshot(self, solver, tag: str, paths: tuple[str, str]) -> None:
        self.schedule.retention.written(tag, paths)

    # ------------------------------------------------------------------ the method
    def _regularise_all(self, solver, layers: list[PrunedLayer]) -> None:
        """One IncReg step for each of ``layers``: rank its groups, update λ, prune the
        crossers, add λ⊙w to its gradient. Column layers on the CPU do it in one call each
        (increg/host.py); the others in three passes (the scores of every layer on the device, the
        host bookkeeping of every layer, then every λ⊙w), so that each kind of code runs back to
        back while the CPU caches still hold it. The layers are independent within an
        iteration (propagated pruning waits for the next forward), so results and [app] lines
        are the same as layer by layer."""
        plan = []
        for layer in layers:
            n_p = columns_to_prune(layer.num_groups(self.unit), layer.current_prune_ratio,
                                   layer.num_pruned(self.unit))
            if self._on_host(layer):
                self._host_step(solver, layer, n_p)
            else:
                plan.append((layer, n_p))
        scores = [self._group_scores(layer.weight.detach()) if n_p > 0 else None
                  for layer, n_p in plan]
        stepped = [layer for (layer, n_p), layer_scores in zip(plan, scores)
                   if self._step(solver, layer, n_p, layer_scores)]
        for layer in stepped:
            self._add_reg_grad(layer, layer.weight.detach())

    def _on_host(self, layer: PrunedLayer) -> bool:
        """Whether ``layer`` takes increg/host.py's one-call CPU path (float32 Col layers)."""
        w, g = layer.weight, layer.weight.grad
        return (self.unit.has_host_step and w.device.type == "cpu" and w.dtype == torch.float32
                and w.is_contiguous() and g is not None and g.is_contiguous()
                and g.dtype == torch.float32)

    def _host_step(self, solver, layer: PrunedLayer, n_p: int) -> None:
        """host.col_step for ``layer``, then its [app] lines and crossers as in _step."""
        if n_p <= 0:
            self.emit(app_log.bug_num_to_prune(n_p))
            return
        scheme = self._scheme(layer)
        table = increment_table(scheme["scheme"], layer.reg.size - layer.num_pruned_col, n_p,
                                self.config.aa, scheme.get("kk"), scheme.get("kk2"),
                                layer.reg.dtype.str)
        num_newly, newly, reduced = increg_host.col_step(
            layer.weight.detach().numpy(), layer.weight.grad.numpy(), layer.running_rank,
            layer.reg, layer.group_pruned_host("Col"), table, n_p, solver.iter + 1,
            self.schedule.rank_start(), self.target_eff, self.config.aa, scheme)
        self._emit_reduced(layer, reduced)
        if num_newly:
            self._pruned_now(layer, newly)

    def _emit_reduced(self, layer: PrunedLayer, entries: list[tuple[int, float, float]]) -> None:
        """The fork's ``reduce reg`` line for each (group, old λ, new λ), in one write."""
        if entries:
            self.emit("\n".join(app_log.reduce_reg(layer.name, group, old, new)
                                for group, old, new in entries))

    def _pruned_now(self, layer: PrunedLayer, newly: np.ndarray) -> None:
        """Mark the crossers ``newly`` (host bool) pruned and queue their propagation."""
        newly_t = torch.from_numpy(newly).to(layer.weight.device)
        layer.prune(self.unit, newly_t)
        self.propagator.pruned(layer, newly_t)
        self._progress_stale = True

    def _step(self, solver, layer: PrunedLayer, n_p: int, scores: np.ndarray | None) -> bool:
        """The host part of one step for ``layer`` (increg/math.py), its [app] lines, and the
        pruning of its crossers; False when the layer gets no λ this iteration (n_p ≤ 0)."""
        if n_p <= 0:
            self.emit(app_log.bug_num_to_prune(n_p))
            return False
        result = increg_step(scores, layer.running_rank, layer.reg,
                             layer.group_pruned_host(self.unit), n_p, solver.iter + 1,
                             self.config.aa, self.target_eff, **self._scheme(layer),
                             rank_start=self.schedule.rank_start())
        if result.skipped:
            return False
        self._emit_reduced(layer, result.reduced_entries())
        layer.running_rank, layer.reg = result.running_rank, result.reg
        if result.num_newly:
            self._pruned_now(layer, result.newly_pruned)
        return True

    def _group_scores(self, w: torch.Tensor) -> np.ndarray:
        """Group L1 norms (weight units, the weights' float dtype) as a host array: one reduction
        where the weights live, then one copy to the host. On a GPU that copy waits for the
        device every iteration, as the fork did (it ranked the groups in host C++ code). The
        step widens them to float64 exactly, on the host. CPU column scores are summed in
        increg/host.py's order, so that a layer gets the same numbers on either path."""
        if self.unit.has_host_step and w.device.type == "cpu" and w.dtype == torch.float32:
            return increg_host.column_scores(w.contiguous().numpy(), groups.num_cols(w))
        return self.unit.group_l1(w).cpu().numpy()

    def _add_reg_grad(self, layer: PrunedLayer, w: torch.Tensor) -> None:
        """grad += λ⊙w for ``layer`` (see add_reg_term_)."""
        add_reg_term_(layer.weight.grad, layer.reg, w, self.unit.view_shape(w))

    def _scheme(self, layer: PrunedLayer) -> dict:
        if not self.unit.allows_scheme2 or self.config.if_scheme1_when_reg_rank:
            return {"scheme": 1, "kk": self.config.kk}
        progress = stage_progress(layer.ratio_for(self.unit), layer.current_prune_ratio,
                                  self.schedule.last_feasible_ratio(layer))
        return {"scheme": 2, "kk2": scheme2_kk(progress)}

    def _check_finished(self, solver) -> None:
        """Reference 2.7: a layer finishes its stage at its current ratio or at the speedup."""
        if self._progress_stale:  # the speedup only moves when something was pruned
            self.speedup_achieved = self.progress().speedup >= self.config.speedup
            self._progress_stale = False
        for layer in self.layers:
            if layer.iter_prune_finished != NEVER:
                continue
            if self.speedup_achieved or self._reached(layer):
                layer.iter_prune_finished = solver.iter
                if layer.prune_ratio > 0:
                    self.emit(self._finished_line(solver, layer))

    def _reached(self, layer: PrunedLayer) -> bool:
        """The layer's ratio reached its stage target: compared as ratios (the fork), or no group
        left to prune by the same count the step uses (so that a target a float ulp above a
        whole number of groups cannot leave the layer printing ``BUG: num_col_to_prune_ = 0``
        forever)."""
        if layer.ratio_for(self.unit) >= layer.current_prune_ratio:
            return True
        return columns_to_prune(layer.num_groups(self.unit), layer.current_prune_ratio,
                                layer.num_pruned(self.unit)) <= 0

    def _finished_line(self, solver, layer: PrunedLayer) -> str:
        return app_log.layer_prune_finished(
            layer.name, solver.iter + 1, self.config.speedup, self.config.comp_ratio,
            layer.pruned_ratio(), layer.pruned_ratio_row(), layer.pruned_ratio_col(),
            layer.current_prune_ratio)

    def clear_leftover_reg(self) -> None:
        """Stage end: unpruned groups with 0 < λ < target get λ = 0 (and are printed)."""
        for layer in self.layers:
            if layer.reg is None or layer.prune_ratio <= 0:
                continue
            pruned = layer.group_pruned_host(self.unit)
            left = (~pruned) & (layer.reg > 0) & (layer.reg < self.target_eff)
            if left.any():
                self.emit(app_log.left_reg_cleared(layer.index, layer.reg[left].tolist()))
                layer.reg = np.where(left, 0.0, layer.reg)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"layers": [layer.state_dict() for layer in self.layers],
                "target_eff": self.target_eff, "schedule": self.schedule.state_dict(),
                "pending": self.propagator.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """A --snapshot resume: everything as it was saved."""
        self._resumed = True
        for layer, saved in zip(self.layers, state["layers"]):
            layer.load_state_dict(saved)
            layer.apply_mask_()
        self.propagator.load_state_dict(state["pending"])
        self._progress_stale = True
        self.target_eff = float(state["target_eff"])
        self.schedule.load_state_dict(state["schedule"])

    def load_rollback_state(self, state: dict) -> None:
        """A rollback inside the run: masks, λ and ranks come back; stage targets stay."""
        for layer, saved in zip(self.layers, state.get("layers", [])):
            finished, ratio = layer.iter_prune_finished, layer.current_prune_ratio
            layer.load_state_dict(saved)
            layer.iter_prune_finished, layer.current_prune_ratio = finished, ratio
            layer.apply_mask_()
        self.propagator.load_state_dict(state.get("pending", {}))
        self._progress_stale = True

    def final_rows(self) -> list[app_log.FinalRatioRow]:
        """The fork's final table (row 18), one row per registered layer."""
        return [app_log.FinalRatioRow(layer.name, tuple(layer.weight.shape), layer.num_col,
                                      float(layer.num_pruned_col), layer.num_row,
                                      float(layer.num_pruned_row))
                for layer in self.layers]


def add_reg_term_(grad: torch.Tensor, reg: np.ndarray, w: torch.Tensor,
                  shape: tuple[int, ...]) -> None:
    """grad += λ⊙w in place: the per-group λ (host float64, viewed as ``shape``, which broadcasts
    against ``w``) rounded to the weights' dtype, times the weights, added to the gradient.

    A product, then a sum, each rounded (not one fused multiply-add, whose single rounding
    differs in the last bit and would change the trajectory). On the CPU NumPy does it on views
    of the tensors' memory, the same IEEE arithmetic per element at a fraction of the per-call
    cost of torch's ops; elsewhere torch does it on the device.
    """
    if grad.device.type == "cpu":
        add_reg_term_host_(grad, reg, w, shape)
    else:
        add_reg_term_torch_(grad, reg, w, shape)


def add_reg_term_host_(grad: torch.Tensor, reg: np.ndarray, w: torch.Tensor,
                       shape: tuple[int, ...]) -> None:
    """add_reg_term_ for CPU tensors, in NumPy."""
    g = grad.numpy()
    g += reg.astype(g.dtype).reshape(shape) * w.numpy()


def add_reg_term_torch_(grad: torch.Tensor, reg: np.ndarray, w: torch.Tensor,
                        shape: tuple[int, ...]) -> None:
    """add_reg_term_ with torch ops, on any device (λ goes there first)."""
    grad.add_(torch.from_numpy(reg).to(w.device, w.dtype).reshape(shape) * w)


def _make_layers(config: StageConfig, solver, net_param) -> list[PrunedLayer]:
    settings = config.layer_settings(net_param)
    ratios = config.initial_prune_ratios(settings)
    blob_index = {(b.layer, b.index): i for i, b in enumerate(solver.blobs)}
    layers = []
    for index, (setting, ratio) in enumerate(zip(settings, ratios)):
        module = solver.net.layer(setting.name)
        layers.append(PrunedLayer(
            name=setting.name, index=index, type=setting.type, weight=module.weight,
            blob_index=blob_index[(setting.name, 0)], prune_ratio=setting.prune_ratio,
            prune_ratio_step=setting.prune_ratio_step,
            if_update_row_col=setting.if_update_row_col and config.if_update_row_col,
            current_prune_ratio=ratio))
    return layers
