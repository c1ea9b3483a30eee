"""IncReg (``Reg_Col``, ``Reg_Row``): incremental regularisation inside the SGD solver.

Wang et al., "Structured Pruning for Efficient ConvNets via Incremental Regularization"
(IJCNN 2019 / NIPS-W 2018). Each group (column or row of Caffe's weight matrix) of a layer gets
its own L2 factor λ, raised a little every iteration by an amount Δ(j) that falls with the
group's importance rank j (a running mean of L1-norm ranks). A group whose λ reaches the
effective target is pruned: masked on weights, gradients and momentum. The per-iteration
formulas live in ``increg_math``; the run schedule (prune → losseval → retrain → stage check)
in ``schedule``. This class keeps the per-layer state and applies it at the solver's hooks.
"""

from __future__ import annotations

import sys
from typing import TextIO

import torch

from prunekit.prune import app_log, groups
from prunekit.prune.config import PruneConfig
from prunekit.prune.increg_math import (
    columns_to_prune, effective_target_reg, increg_step, scheme2_kk, stage_progress)
from prunekit.prune.layer_state import NEVER, PrunedLayer
from prunekit.prune.progress import PrunedRatios, layer_costs, prune_progress
from prunekit.prune.propagation import Propagator
from prunekit.prune.schedule import Schedule
from prunekit.solver.hooks import SolverHook


class IncReg(SolverHook):
    """The ``Reg`` method as a solver hook (one object for the whole net)."""

    name = "pruning"

    def __init__(self, config: PruneConfig, solver, net_param, out: TextIO | None = None) -> None:
        self.config = config
        self.unit = config.unit
        self.out = out or sys.stdout
        self.layers = _make_layers(config, solver, net_param)
        self.costs = layer_costs(solver.net)
        self.propagator = Propagator(solver.net, self.layers, config, self.out)
        self.target_eff = self._target(config.prune_ratio_begin_ave)
        self.speedup_achieved = False
        self._progress_stale = True
        self._resumed = False  # set when --snapshot loaded the saved masks
        self.schedule = Schedule(self, config, self.out)

    # ------------------------------------------------------------------ helpers
    def _target(self, incre_pr: float) -> float:
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
        self.schedule.on_start(solver)

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
        lr = solver.lr_override if solver.lr_override is not None else solver.rate
        for layer in self.layers:
            count = layer.num_pruned_col if self.unit == "Col" else layer.num_pruned_row
            self.emit(app_log.layer_summary(
                layer.name, layer.prune_ratio > 0, self.unit, layer.ratio_for(self.unit), count,
                layer.current_prune_ratio, layer.iter_prune_finished, self.schedule.state, lr,
                solver.extra_iter_size, self.target_eff))

    def after_backward(self, solver) -> None:
        with torch.no_grad():
            for layer in self.layers:
                if layer.weight.grad is not None and layer.has_pruned:
                    layer.weight.grad.mul_(layer.mask)

    def before_update(self, solver) -> None:
        if self.schedule.state == "prune":
            for layer in self.layers:
                if layer.prune_ratio > 0 and layer.iter_prune_finished == NEVER:
                    self._regularise(solver, layer)
        with torch.no_grad():
            for layer in self.layers:
                if layer.has_pruned:
                    if layer.weight.grad is not None:
                        layer.weight.grad.mul_(layer.mask)
                    solver.history[layer.blob_index].mul_(layer.mask)

    def after_update(self, solver) -> None:
        for layer in self.layers:
            layer.apply_mask_()
        if solver.lr_override is None:  # the fork freezes the lr at its first value
            solver.lr_override = solver.rate
        self.schedule.after_update(solver)

    def on_snapshot(self, solver, tag: str, paths: tuple[str, str]) -> None:
        self.schedule.retention.written(tag, paths)

    # ------------------------------------------------------------------ the method
    def _regularise(self, solver, layer: PrunedLayer) -> None:
        pruned = layer.group_pruned(self.unit)
        n_p = columns_to_prune(layer.num_groups(self.unit), layer.current_prune_ratio,
                               layer.num_pruned_col if self.unit == "Col" else layer.num_pruned_row)
        if n_p <= 0:
            self.emit(app_log.bug_num_to_prune(n_p))
            return
        w = layer.weight.detach()
        scores = (groups.column_l1(w) if self.unit == "Col" else groups.row_l1(w)).double()
        result = increg_step(scores, layer.running_rank, layer.reg, pruned, n_p, solver.iter + 1,
                             self.config.aa, self.target_eff, **self._scheme(layer),
                             rank_start=self.schedule.rank_start())
        if result.skipped:
            return
        if bool(result.reduced.any()):
            for group, old, new in result.reduced_entries():
                self.emit(app_log.reduce_reg(layer.name, group, old, new))
        layer.running_rank, layer.reg = result.running_rank, result.reg
        if bool(result.newly_pruned.any()):
            layer.prune(self.unit, result.newly_pruned)
            self.propagator.pruned(layer, result.newly_pruned)
            self._progress_stale = True
        with torch.no_grad():
            reg = layer.reg.to(w.dtype)
            spread = groups.col_broadcast(reg, w) if self.unit == "Col" else groups.row_broadcast(reg, w)
            layer.weight.grad.add_(spread * w)

    def _scheme(self, layer: PrunedLayer) -> dict:
        if self.unit == "Row" or self.config.if_scheme1_when_reg_rank:
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
            if layer.ratio_for(self.unit) >= layer.current_prune_ratio or self.speedup_achieved:
                layer.iter_prune_finished = solver.iter
                if layer.prune_ratio > 0:
                    self.emit(self._finished_line(solver, layer))

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
            pruned = layer.group_pruned(self.unit)
            left = (~pruned) & (layer.reg > 0) & (layer.reg < self.target_eff)
            if bool(left.any()):
                self.emit(app_log.left_reg_cleared(layer.index, layer.reg[left].tolist()))
                layer.reg = torch.where(left, torch.zeros_like(layer.reg), layer.reg)

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
                                      float(layer.col_pruned.sum()), layer.num_row,
                                      float(layer.row_pruned.sum()))
                for layer in self.layers]


def _make_layers(config: PruneConfig, solver, net_param) -> list[PrunedLayer]:
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
