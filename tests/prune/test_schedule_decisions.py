"""The IncReg schedule decides and the hook acts (issue 14): the schedule's entry points yield
decision objects (prune/increg/decisions.py) and change nothing about the solver until the
decision is applied; apply_decisions carries each out and sends back what the schedule needs."""

from __future__ import annotations

from pathlib import Path

from test_increg_hook import _setup

from prunekit.prune.increg.decisions import (
    EnterState, RunTests, TakeSnapshot, apply_decisions,
)


def test_losseval_end_is_a_decision_applied_by_the_hook(tmp_path) -> None:
    solver, hook, _out, _b, _a, nets = _setup(tmp_path)
    try:
        schedule = hook.schedule
        schedule.state = "losseval"
        schedule.stage_iter_prune_finished = solver.iter - hook.config.losseval_interval
        solver.control.set_iter_size(7)
        decisions = schedule.after_update(solver)
        first = next(decisions)
        want = hook.config.iter_size_for_state("retrain")
        assert first == EnterState("retrain", want) and want != 7
        assert solver.control.extra_iter_size == 7   # decided, not yet done
        first.apply(solver)
        assert solver.control.extra_iter_size == want
        assert apply_decisions(decisions, solver) == []  # nothing else this iteration
        assert schedule.state == "retrain"
    finally:
        for n in nets:
            n.close()


def test_retrain_test_snapshot_and_scores_go_through_decisions(tmp_path) -> None:
    solver, hook, _out, _b, _a, nets = _setup(tmp_path)
    try:
        schedule = hook.schedule
        schedule.state = "retrain"
        assert solver.iter % hook.config.retrain_test_interval == 0
        decisions = schedule.after_update(solver)
        snap = next(decisions)
        assert snap == TakeSnapshot("_stage1-retrain")
        model = Path(f"{solver.snapshot_prefix}_stage1-retrain_iter_{solver.iter}.caffemodel")
        assert not model.exists()                     # the schedule did not write it
        snap.apply(solver)
        assert model.is_file()
        assert decisions.send(None) == RunTests()
        # the tiny net has no TEST net: the scores the hook would get back are sent in
        try:
            decisions.send([[("accuracy", 0.625, 0.0)]])
        except StopIteration:
            pass
        else:
            raise AssertionError("one test decides nothing more")
        assert schedule.cycle_accs == [(0.625, solver.iter)]
        assert schedule.best_all == (0.625, solver.iter)
    finally:
        for n in nets:
            n.close()
