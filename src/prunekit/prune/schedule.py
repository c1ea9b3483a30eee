"""The run state machine of the IncReg fork (reference section 3), given-ratio mode.

prune ──(all layers at their ratio, or the speedup reached)──▶ losseval ──(losseval_interval
iterations)──▶ retrain ──(tests every retrain_test_interval; lr periods end after `patience`
tests without improvement, each end decays the lr ×0.1 and rolls back to the period's best)──▶
stage check (mean of the cycle's top-3 accuracies) ──▶ done.

What is fixed relative to the fork: the run ends by telling the solver (no exit(0) from inside
it); the last line names the best model file; the lr freeze and every counter are saved in the
solverstate, so a resumed run continues exactly.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.prune import app_log
from prunekit.prune.layer_state import NEVER
from prunekit.prune.retention import Retention

STATES = ("prune", "losseval", "retrain", "final_retrain")


class Schedule:
    """Stage bookkeeping and transitions; ``method`` is the IncReg hook that owns it."""

    def __init__(self, method, config, out: TextIO) -> None:
        if not config.given_ratio_mode:
            raise PrunekitError(
                f"{config.source}: acc_borderline > 0 (the accuracy-floor mode with stages and "
                "rollback) is not available yet; use acc_borderline: -1 (given prune ratio)")
        self.method = method
        self.config = config
        self.out = out
        self.state = "prune"
        self.stage = 1
        self.stage_iter_prune_finished = -1
        self.stage_start_iter = 0
        self.ave_pr = 0.0
        self.lr_state_start = 0.0
        self.last_retrain_lr = 0.0
        self.last_feasible = [0.0] * len(method.layers)
        self.last_feasible_iter2 = 0
        self.started = False
        self.retention = Retention()
        self._reset_cycle()

    def _reset_cycle(self) -> None:
        self.cycle_accs: list[tuple[float, int]] = []
        self.best_all = (-1.0, -1)
        self.decays = 0
        self.first_period_best_iter = -1
        self.first_period = True
        self._reset_period()

    def _reset_period(self) -> None:
        self.period_best = (-1.0, -1, 0)  # acc, iter, 1-based position
        self.period_count = 0

    # ------------------------------------------------------------------ entry points
    def rank_start(self) -> int:
        return self.stage_start_iter if self.config.rank_restart_each_stage else 0

    def last_feasible_ratio(self, layer) -> float:
        return self.last_feasible[layer.index]

    def on_start(self, solver) -> None:
        """Fresh start: the stage-0 snapshot and the opening lines; a resume just re-enters."""
        self._enter(solver, self.state)
        if self.started:
            return
        self.started = True
        progress = self.method.progress()
        self.method.emit(app_log.totals_line(self.config.if_speedup_count_fc, progress.macs_origin,
                                             self.config.if_compr_count_conv,
                                             progress.num_param_origin))
        self.method.emit(app_log.training_starts(solver.iter, datetime.now(), progress.speedup,
                                                 progress.comp_ratio))
        solver.snapshot("_stage0")

    def after_update(self, solver) -> None:
        """Step 10 of the fork's iteration: the transitions, then the progress line."""
        k = solver.iter
        if self.state == "prune" and all(l.iter_prune_finished != NEVER for l in self.method.layers):
            self._prune_finished(solver)
        if self.state == "losseval" and k - self.stage_iter_prune_finished >= self.config.losseval_interval:
            self.method.emit(app_log.losseval_done(k, datetime.now()))
            self._enter(solver, "retrain")
        elif self.state == "retrain" and k % self.config.retrain_test_interval == 0:
            self._check_max_acc(solver)
        if not solver.finished and solver.param.display and k % solver.param.display == 0:
            progress = self.method.progress()
            self.method.emit(app_log.step_line(k + 1, progress.speedup, self.config.speedup,
                                               progress.comp_ratio, self.config.comp_ratio))

    # ------------------------------------------------------------------ transitions
    def _enter(self, solver, state: str) -> None:
        self.state = state
        solver.extra_iter_size = self.config.iter_size_for_state(state)
        if state == "retrain" and solver.lr_override is not None:
            self.lr_state_start = solver.lr_override

    def _prune_finished(self, solver) -> None:
        k = solver.iter
        self.stage_iter_prune_finished = k
        progress = self.method.progress()
        self.method.emit(app_log.stage_finished(self.stage, progress.speedup, k, datetime.now()))
        for layer in self.method.layers:
            if layer.prune_ratio > 0:
                self.method.emit(app_log.layer_pruned_ratio(layer.index,
                                                            layer.ratio_for(self.method.unit)))
        self.method.clear_leftover_reg()
        self._enter(solver, "losseval")

    def _check_max_acc(self, solver) -> None:
        """One retrain test (reference 3.3)."""
        k = solver.iter
        tag = f"_stage{self.stage}-retrain"
        solver.snapshot(tag)
        acc = self._accuracy(solver.test_all())
        self.cycle_accs.append((acc, k))
        self.period_count += 1
        if acc > self.period_best[0]:
            self.period_best = (acc, k, self.period_count)
        if acc > self.best_all[0]:
            self.best_all = (acc, k)
        self.method.emit(app_log.retrain_going_on(self.state, acc, k, datetime.now()))
        # given-ratio mode: cnt_after_max_acc + 2, plus 2 more in the first lr period (3.3)
        patience = self.config.cnt_after_max_acc + 2 + (2 if self.first_period else 0)
        if self.period_count - self.period_best[2] > patience:
            self._end_period(solver, tag)
        if not solver.finished:
            self._keep({self.period_best[1], self.best_all[1], self.first_period_best_iter}, solver, tag)

    def _keep(self, iterations: set[int], solver, tag: str) -> None:
        """Retrain snapshots still needed: rollback targets and the best model."""
        self.retention.keep_only({f"{solver.snapshot_prefix}{tag}_iter_{it}.caffemodel"
                                  for it in iterations if it >= 0})

    def _end_period(self, solver, tag: str) -> None:
        if self.first_period_best_iter < 0:
            self.first_period_best_iter = self.period_best[1]
        solver.lr_override *= self.config.mul_lr_decay
        self.decays += 1
        self.method.emit(app_log.lr_period_finished(self.state, self.period_best[0],
                                                    self.period_best[1], solver.lr_override,
                                                    datetime.now()))
        self._rollback(solver, tag, self.period_best[1])
        stop = (self.decays > self.config.max_cnt_lr_decay
                or self.period_best[0] < self.best_all[0] or solver.lr_override < 1e-6)
        self.first_period = False
        self._reset_period()
        if stop:
            self._retrain_done(solver, tag)

    def _retrain_done(self, solver, tag: str) -> None:
        solver.lr_override /= self.config.mul_lr_decay
        best_acc, best_iter = self.best_all
        self.method.emit(app_log.retrain_done(self.state, best_iter, best_acc,
                                              self.first_period_best_iter))
        self._rollback(solver, tag, self.first_period_best_iter)
        self.last_retrain_lr = solver.lr_override
        solver.lr_override = self.lr_state_start
        self._accept_stage(solver, best_iter)

    def _accept_stage(self, solver, best_iter: int) -> None:
        """Given-ratio mode: the stage is always accepted, then the run ends (reference 3.5)."""
        self.method.emit(app_log.accuracy_good())
        incre = self.config.prune_ratio_begin_ave
        self.ave_pr += incre
        self.method.target_eff = self.method._target(incre)
        self.method.emit(app_log.incre_pr_line(incre, self.ave_pr, self.method.target_eff))
        unit = self.method.unit
        self.last_feasible = [layer.ratio_for(unit) for layer in self.method.layers]
        for layer in self.method.layers:
            if layer.prune_ratio > 0:
                old = layer.current_prune_ratio
                step = incre / self.config.standard_sparsity * layer.prune_ratio_step
                new = min(self.last_feasible[layer.index] + step, layer.prune_ratio)
                self.method.emit(app_log.current_prune_ratio_change(layer.index, old, new))
                layer.current_prune_ratio = new
        self.last_feasible_iter2 = best_iter
        solver.snapshot(f"_stage{self.stage}")
        self.stage += 1
        self._finish(solver, best_iter)

    def _finish(self, solver, best_iter: int) -> None:
        if self.config.if_eswpf:
            self.method.emit(app_log.all_layers_finished(solver.iter, early_stopped=True))
            self.method.emit(app_log.final_pruned_ratios(self.method.final_rows()))
        else:
            self.method.emit(app_log.all_layers_finished(solver.iter, early_stopped=False))
            path = f"{solver.snapshot_prefix}_stage{self.stage - 1}-retrain_iter_{best_iter}"
            self.method.emit(app_log.resuming_from(path + ".solverstate"))
            solver.restore(path + ".solverstate", rollback=True)
            self.method.emit(app_log.task_done())
        self._keep({best_iter}, solver, f"_stage{self.stage - 1}-retrain")
        model = f"{solver.snapshot_prefix}_stage{self.stage - 1}-retrain_iter_{best_iter}.caffemodel"
        get_logger().info("Pruning done. Best model: %s (accuracy %s)", model,
                          app_log.cpp_fixed(self.best_all[0]))
        solver.finished = True

    def _rollback(self, solver, tag: str, iteration: int) -> None:
        solver.restore(f"{solver.snapshot_prefix}{tag}_iter_{iteration}.solverstate", rollback=True)

    def _accuracy(self, results) -> float:
        """Top-1 = the smallest, top-5 = the largest output whose name contains "ccuracy"."""
        values = [value for scores in results for name, value, _ in scores if "ccuracy" in name]
        if not values:
            raise PrunekitError(f"{self.config.source}: retraining needs an accuracy output in "
                                "the TEST net, and there is none")
        return min(values) if self.config.if_use_acc1 else max(values)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        keys = ("state", "stage", "stage_iter_prune_finished", "stage_start_iter", "ave_pr",
                "lr_state_start", "last_retrain_lr", "last_feasible", "last_feasible_iter2",
                "started", "cycle_accs", "best_all", "decays", "first_period_best_iter",
                "first_period", "period_best", "period_count")
        out = {key: getattr(self, key) for key in keys}
        out["retention"] = self.retention.state_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.retention.load_state_dict(state.pop("retention", {}))
        for key, value in state.items():
            setattr(self, key, value)
