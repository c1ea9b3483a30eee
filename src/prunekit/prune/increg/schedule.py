"""The run state machine of the IncReg fork (docs/pruning.md "The run state machine"), both modes.

prune ──(all layers at their stage ratio, or the speedup reached)──▶ losseval ──(losseval_interval
iterations)──▶ retrain ──(a test every retrain_test_interval; an lr period ends after `patience`
tests without improvement: lr ×mul_lr_decay and a rollback to the period's best)──▶ stage check
(``stage_search``: mean of the cycle's top-3 accuracies):

* given-ratio mode (acc_borderline <= 0): the single stage is accepted and the run ends on the
  best retrain model;
* accuracy-floor mode: a good stage is saved as ``_stage<K>`` and the next, larger stage starts;
  a bad one rolls back to ``_stage<K-1>`` and retries with a smaller increment. When the final
  target is reached, or the increment falls below incre_pr_bottomline, ``final_retrain``
  fine-tunes the best feasible model for one more lr period and the run ends on the better of
  the two.

The schedule decides, the hook acts: ``on_start`` and ``after_update`` are generators of decision
objects (prune/increg/decisions.py: snapshot, roll back, enter a state, change the lr, test,
finish) that prune/increg/hook.py applies one by one through the solver; the schedule itself only
reads the solver (iteration, display, snapshot prefix, the lr in force).

What is fixed relative to the fork: the run ends by telling the solver (no exit(0) from inside
it); the last line names the best model file; the lr freeze and every counter are saved in the
solverstate, so a resumed run continues exactly; a failed stage 1 with a tiny increment falls
back to the baseline (``_stage0``) instead of a retrain snapshot that never existed; the
speedup flag is recomputed after every rollback.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.prune import app_log
from prunekit.prune.layer_state import NEVER
from prunekit.prune.increg.decisions import (
    DecayLr, Decisions, EnterState, Finish, RollBack, RunTests, SetLr, TakeSnapshot, UndoLrDecay,
)
from prunekit.prune.increg.retention import Retention
from prunekit.prune.increg.stage_search import StageSearch

STATES = ("prune", "losseval", "retrain", "final_retrain")

#: Slack when comparing a pruned ratio (count / G) with a target ratio.
RATIO_EPS = 1e-9


class Schedule:
    """Stage bookkeeping and transitions; ``method`` is the IncReg hook that owns it."""

    def __init__(self, method, config, out: TextIO) -> None:
        self.method = method
        self.config = config
        self.out = out
        self.state = "prune"
        self.stage = 1
        self.stage_iter_prune_finished = -1
        self.stage_start_iter = 0
        self.lr_state_start = 0.0
        self.last_retrain_lr = 0.0
        self.final_entry_iter = -1
        self.started = False
        self.search = StageSearch.from_config(config, len(method.layers), 0)
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
        return self.search.last_feasible[layer.index]

    def on_start(self, solver) -> Decisions:
        """Fresh start: the stage-0 snapshot and the opening lines; a resume just re-enters."""
        yield from self._enter(self.state)
        if self.started:
            return
        self.started = True
        self.search.last_feasible_iter = self.stage_start_iter = solver.iter
        progress = self.method.progress()
        self.method.emit(app_log.totals_line(self.config.if_speedup_count_fc, progress.macs_origin,
                                             self.config.if_compr_count_conv,
                                             progress.num_param_origin))
        self.method.emit(app_log.training_starts(solver.iter, datetime.now(), progress.speedup,
                                                 progress.comp_ratio))
        yield TakeSnapshot("_stage0")

    def after_update(self, solver) -> Decisions:
        """Step 10 of the fork's iteration: the transitions, then the progress line."""
        k = solver.iter
        interval = self.config.retrain_test_interval
        if self.state == "prune" and all(l.iter_prune_finished != NEVER for l in self.method.layers):
            yield from self._prune_finished(solver)
        if self.state == "losseval" and k - self.stage_iter_prune_finished >= self.config.losseval_interval:
            self.method.emit(app_log.losseval_done(k, datetime.now()))
            self._reset_cycle()
            self.lr_state_start = solver.control.lr_override  # retrain's lr decays; prune goes on from here
            yield from self._enter("retrain")
        elif self.state == "retrain" and k % interval == 0:
            yield from self._test(solver)
        elif self.state == "final_retrain" and k % interval == 0 and k != self.final_entry_iter:
            yield from self._test(solver)
        if not solver.control.finished and solver.param.display and k % solver.param.display == 0:
            progress = self.method.progress()
            self.method.emit(app_log.step_line(k + 1, progress.speedup, self.config.speedup,
                                               progress.comp_ratio, self.config.comp_ratio))

    # ------------------------------------------------------------------ states
    def _enter(self, state: str) -> Decisions:
        """SetPruneState's part that a resume repeats: the state and its iter_size."""
        self.state = state
        yield EnterState(state, self.config.iter_size_for_state(state))

    def _start_stage(self, solver) -> Decisions:
        """A new (or retried) pruning stage: layers with a target prune again."""
        for layer in self.method.layers:
            if layer.prune_ratio > 0:
                layer.iter_prune_finished = NEVER
        self.stage_start_iter = solver.iter
        self.method.progress_changed()  # the speedup flag must be recomputed
        yield from self._enter("prune")

    def _prune_finished(self, solver) -> Decisions:
        k = solver.iter
        self.stage_iter_prune_finished = k
        progress = self.method.progress()
        self.method.emit(app_log.stage_finished(self.stage, progress.speedup, k, datetime.now()))
        for layer in self.method.layers:
            if layer.prune_ratio > 0:
                self.method.emit(app_log.layer_pruned_ratio(layer.index,
                                                            layer.ratio_for(self.method.unit)))
        self.method.clear_leftover_reg()
        yield from self._enter("losseval")

    # ------------------------------------------------------------------ CheckMaxAcc (3.3)
    def _tag(self) -> str:
        return "_finalretrain" if self.state == "final_retrain" else f"_stage{self.stage}-retrain"

    def _patience(self) -> int:
        """Tests without improvement that end an lr period (docs/pruning.md "Retrain cycle")."""
        c = self.config.cnt_after_max_acc
        if self.state == "final_retrain":
            return c + 4
        base = c + 2 if self.config.given_ratio_mode else c
        return base + (2 if self.first_period else 0)

    def _test(self, solver) -> Decisions:
        """One retrain / final_retrain test."""
        k, tag = solver.iter, self._tag()
        yield TakeSnapshot(tag)
        acc = self._accuracy((yield RunTests()))
        self.cycle_accs.append((acc, k))
        self.period_count += 1
        if acc > self.period_best[0]:
            self.period_best = (acc, k, self.period_count)
        if acc > self.best_all[0]:
            self.best_all = (acc, k)
        self.method.emit(app_log.retrain_going_on(self.state, acc, k, datetime.now()))
        if self.period_count - self.period_best[2] > self._patience():
            yield from self._end_period(solver, tag)
        if not solver.control.finished:
            self._keep(solver, {(tag, self.period_best[1]), (tag, self.best_all[1]),
                                (tag, self.first_period_best_iter)})

    def _end_period(self, solver, tag: str) -> Decisions:
        if self.first_period_best_iter < 0:
            self.first_period_best_iter = self.period_best[1]
        yield DecayLr(self.config.mul_lr_decay)
        self.decays += 1
        self.method.emit(app_log.lr_period_finished(self.state, self.period_best[0],
                                                    self.period_best[1], solver.control.lr_override,
                                                    datetime.now()))
        yield from self._rollback(solver, f"{tag}_iter_{self.period_best[1]}")
        if self.state == "final_retrain":
            yield from self._final_retrain_done(solver)
            return
        stop = (self.decays > self.config.max_cnt_lr_decay
                or self.period_best[0] < self.best_all[0] or solver.control.lr_override < 1e-6)
        self.first_period = False
        self._reset_period()
        if stop:
            yield from self._retrain_done(solver, tag)

    def _retrain_done(self, solver, tag: str) -> Decisions:
        yield UndoLrDecay(self.config.mul_lr_decay)
        best_acc, best_iter = self.best_all
        self.method.emit(app_log.retrain_done(self.state, best_iter, best_acc,
                                              self.first_period_best_iter))
        yield from self._rollback(solver, f"{tag}_iter_{self.first_period_best_iter}")
        self.last_retrain_lr = solver.control.lr_override
        yield SetLr(self.lr_state_start)
        top3 = sorted((acc for acc, _ in self.cycle_accs), reverse=True)[:3]
        yield from self._check_prune_stage(solver, sum(top3) / len(top3), best_iter, best_acc)

    # ------------------------------------------------------------------ CheckPruneStage (3.4)
    def _ratios(self) -> list[float]:
        return [layer.ratio_for(self.method.unit) for layer in self.method.layers]

    def _check_prune_stage(self, solver, acc: float, best_iter: int,
                           best_acc: float) -> Decisions:
        search = self.search
        good = search.is_good(acc)
        if good:
            self.method.emit(app_log.accuracy_good())
            incre = search.accept(acc, solver.iter, best_iter, best_acc, self._ratios(), self.stage)
        else:
            self.method.emit(app_log.accuracy_bad(search.last_feasible_iter, self.stage - 1))
            incre = search.reject(acc, self._ratios())
        self.method.set_stage_increment(incre)
        self.method.emit(app_log.incre_pr_line(incre, search.ave_pr, self.method.target_eff))
        self._set_stage_ratios(incre)
        if good:
            yield from self._start_stage(solver)
            yield TakeSnapshot(f"_stage{self.stage}")
            self.stage += 1
            yield from self._after_good_stage(solver)
        elif search.too_small(incre):
            self.method.emit(app_log.incre_pr_too_small(search.bottomline))
            yield from self._go_final_retrain(solver)
        else:
            yield from self._rollback(
                solver, f"_stage{self.stage - 1}_iter_{search.last_feasible_iter}", announce=True)
            yield from self._start_stage(solver)

    def _set_stage_ratios(self, incre: float) -> None:
        c = self.config
        for layer in self.method.layers:
            if layer.prune_ratio > 0:
                new = self.search.stage_ratio(layer.index, incre, layer.prune_ratio,
                                              layer.prune_ratio_step, c.standard_sparsity)
                self.method.emit(app_log.current_prune_ratio_change(
                    layer.index, layer.current_prune_ratio, new))
                layer.current_prune_ratio = new

    def _after_good_stage(self, solver) -> Decisions:
        """CheckIfFinalTargetAchieved, and the given-ratio ending."""
        if self.config.given_ratio_mode:
            yield from self._finish_given_ratio(solver)
            return
        if not self._final_target_achieved():
            return
        if self.config.if_eswpf:
            self.method.emit(app_log.all_layers_finished(solver.iter, early_stopped=True))
            yield from self._finish(solver, self._stage_best_model(),
                                    self.search.last_feasible_acc2)
            return
        self.method.emit(app_log.all_layers_finished(solver.iter, early_stopped=False))
        yield from self._go_final_retrain(solver)

    def _final_target_achieved(self) -> bool:
        unit = self.method.unit
        if self.method.progress().speedup >= self.config.speedup:
            return True
        return all(layer.ratio_for(unit) >= layer.prune_ratio - RATIO_EPS
                   for layer in self.method.layers if layer.prune_ratio > 0)

    # ------------------------------------------------------------------ endings
    def _stage_best_model(self) -> str:
        """Snapshot stem of the best retrain test of the last accepted stage (the baseline's
        ``_stage0`` snapshot when no stage was accepted)."""
        s = self.search
        if s.accepted_stage == 0:
            return f"_stage0_iter_{s.last_feasible_iter}"
        return f"_stage{s.accepted_stage}-retrain_iter_{s.last_feasible_iter2}"

    def _go_final_retrain(self, solver) -> Decisions:
        yield from self._rollback(solver, self._stage_best_model(), announce=True)
        self.final_entry_iter = solver.iter
        yield SetLr(self.last_retrain_lr)
        self._reset_cycle()
        yield from self._enter("final_retrain")

    def _final_retrain_done(self, solver) -> Decisions:
        """The final lr period ended: report the better of it and the last accepted stage."""
        acc, it = self.best_all
        self.method.emit(app_log.state_done("final_retrain", it, acc))
        s = self.search
        stem = f"_finalretrain_iter_{it}"
        if s.last_feasible_acc2 > acc:
            stem, acc, it = self._stage_best_model(), s.last_feasible_acc2, s.last_feasible_iter2
        self.method.emit(app_log.all_prune_done(it, acc))
        yield from self._finish(solver, stem, acc)

    def _finish_given_ratio(self, solver) -> Decisions:
        best = self._stage_best_model()
        if self.config.if_eswpf:
            self.method.emit(app_log.all_layers_finished(solver.iter, early_stopped=True))
        else:
            self.method.emit(app_log.all_layers_finished(solver.iter, early_stopped=False))
            yield from self._rollback(solver, best, announce=True)
            self.method.emit(app_log.task_done())
        yield from self._finish(solver, best, self.search.last_feasible_acc2,
                                table=self.config.if_eswpf)

    def _finish(self, solver, stem: str, acc: float, table: bool = True) -> Decisions:
        if table:
            self.method.emit(app_log.final_pruned_ratios(self.method.final_rows()))
        self.retention.keep_only({f"{solver.snapshot_prefix}{stem}.caffemodel"})
        get_logger().info("Pruning done. Best model: %s%s.caffemodel (accuracy %s)",
                          solver.snapshot_prefix, stem, app_log.cpp_fixed(acc))
        yield Finish(stem)

    # ------------------------------------------------------------------ helpers
    def _keep(self, solver, stems: set[tuple[str, int]]) -> None:
        """Retrain snapshots still needed: rollback targets, the best model of this cycle and
        that of the last accepted stage."""
        prefix = solver.snapshot_prefix
        keep = {f"{prefix}{tag}_iter_{it}.caffemodel" for tag, it in stems if it >= 0}
        keep.add(f"{prefix}{self._stage_best_model()}.caffemodel")
        self.retention.keep_only(keep)

    def _rollback(self, solver, stem: str, announce: bool = False) -> Decisions:
        path = f"{solver.snapshot_prefix}{stem}.solverstate"
        if announce:
            self.method.emit(app_log.resuming_from(path))
        yield RollBack(path)
        self.method.progress_changed()  # the speedup flag must be recomputed

    def _accuracy(self, results) -> float:
        """Top-1 = the smallest, top-5 = the largest output whose name contains "ccuracy"."""
        values = [value for scores in results for name, value, _ in scores if "ccuracy" in name]
        if not values:
            raise PrunekitError(f"{self.config.source}: retraining needs an accuracy output in "
                                "the TEST net, and there is none")
        return min(values) if self.config.if_use_acc1 else max(values)

    # ------------------------------------------------------------------ state
    _KEYS = ("state", "stage", "stage_iter_prune_finished", "stage_start_iter", "lr_state_start",
             "last_retrain_lr", "final_entry_iter", "started", "cycle_accs", "best_all", "decays",
             "first_period_best_iter", "first_period", "period_best", "period_count")

    def state_dict(self) -> dict:
        out = {key: getattr(self, key) for key in self._KEYS}
        out["search"] = self.search.state_dict()
        out["retention"] = self.retention.state_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.retention.load_state_dict(state.pop("retention", {}))
        self.search.load_state_dict(state.pop("search", {}))
        for key in self._KEYS:
            if key in state:
                setattr(self, key, state[key])
