"""Caffe's lr_policy values, checked through real training runs (rates, weights, logs)."""

from __future__ import annotations

import math

import pytest
from _solver_caffe_ref import (
    Recorder, assert_weights_close, build_net, feed, make_solver, regression_data,
    regression_text, run_regression_ref, weights_of)

from prunekit import caffe
from prunekit.errors import PrunekitError

BASE = 0.05
ITERS = 12


def formula(policy: str, it: int) -> float:
    """The lr_policy formulas of caffe.proto's comment, written out per policy."""
    if policy == "fixed":
        return BASE
    if policy == "step":  # stepsize 4, gamma 0.5
        return BASE * 0.5 ** math.floor(it / 4)
    if policy == "exp":  # gamma 0.9
        return BASE * 0.9 ** it
    if policy == "inv":  # gamma 0.1, power 0.75
        return BASE * (1 + 0.1 * it) ** -0.75
    if policy == "poly":  # max_iter 20, power 2
        return BASE * (1 - it / 20) ** 2
    if policy == "sigmoid":  # gamma -0.5, stepsize 6
        return BASE / (1 + math.exp(0.5 * (it - 6)))
    raise AssertionError(policy)


SETTINGS = {
    "fixed": "",
    "step": "stepsize: 4 gamma: 0.5",
    "exp": "gamma: 0.9",
    "inv": "gamma: 0.1 power: 0.75",
    "poly": "max_iter: 20 power: 2",
    "sigmoid": "gamma: -0.5 stepsize: 6",
}


def _run(tmp_path, policy_text: str, iters: int = ITERS, display: int = 1):
    net = build_net(regression_text())
    x, t = regression_data()
    feed(net, x, t)
    w0 = weights_of(net)
    recorder = Recorder()
    solver = make_solver(f'base_lr: {BASE} momentum: 0.9 {policy_text} display: {display}',
                         net, tmp_path, hooks=[recorder])
    solver.step(iters)
    return net, solver, recorder, w0, x, t


@pytest.mark.parametrize("policy", list(SETTINGS))
def test_policy_rates_and_weights(policy, tmp_path, log_lines):
    net, solver, rec, w0, x, t = _run(tmp_path, f'lr_policy: "{policy}" {SETTINGS[policy]}')
    expected = [formula(policy, it) for it in range(ITERS)]
    assert rec.rates == pytest.approx(expected, rel=1e-6)
    # the schedule really changes (except fixed), so a policy ignoring iter would fail
    if policy != "fixed":
        assert max(expected) / min(expected) > 1.5
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS)
    assert ref.rates == pytest.approx(expected, rel=1e-6)
    assert_weights_close(net, ref.w)
    # "Iteration N, lr = X" as Caffe's SGDSolver::ApplyUpdate prints it (%g, 6 digits)
    lr_lines = log_lines.matching(r"Iteration (\d+), lr = (\S+)")
    assert [int(m[1]) for m in lr_lines] == list(range(ITERS))
    for m, want in zip(lr_lines, expected):
        assert float(m[2]) == pytest.approx(want, rel=1e-5)
        assert m[2] == f"{float(m[2]):.6g}"


def test_step_policy_sets_current_step(tmp_path):
    _, solver, rec, *_ = _run(tmp_path, 'lr_policy: "step" stepsize: 4 gamma: 0.5')
    assert rec.steps == [it // 4 for it in range(ITERS)]  # Caffe: current_step_ = iter / stepsize
    _, state_path = solver.snapshot()
    assert caffe.read_solverstate(state_path).current_step == (ITERS - 1) // 4


def test_multistep_current_step(tmp_path, log_lines):
    # stepvalues 3, 7, 7: Caffe advances current_step at most once per iteration (an `if`, not a
    # loop), so the repeated 7 takes effect one iteration later, at 8.
    net, solver, rec, w0, x, t = _run(
        tmp_path, 'lr_policy: "multistep" gamma: 0.5 stepvalue: 3 stepvalue: 7 stepvalue: 7')
    want_steps = [0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3, 3]
    assert rec.steps == want_steps
    assert rec.rates == pytest.approx([BASE * 0.5 ** s for s in want_steps], rel=1e-6)
    assert solver.current_step == 3
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS)
    assert ref.current_step == 3
    assert_weights_close(net, ref.w)
    _, state_path = solver.snapshot()
    assert caffe.read_solverstate(state_path).current_step == 3


def test_multistep_resume_keeps_current_step(tmp_path):
    text = 'lr_policy: "multistep" gamma: 0.5 stepvalue: 2 stepvalue: 5'
    net, solver, rec, w0, x, t = _run(tmp_path, text, iters=4)
    assert solver.current_step == 1
    _, state_path = solver.snapshot()
    fresh = build_net(regression_text(), seed=7)
    feed(fresh, x, t)
    rec2 = Recorder()
    resumed = make_solver(f'base_lr: {BASE} momentum: 0.9 {text}', fresh, tmp_path, hooks=[rec2])
    resumed.restore(state_path)
    assert resumed.current_step == 1 and resumed.iter == 4
    resumed.step(4)
    assert rec2.steps == [1, 2, 2, 2]
    ref, _ = run_regression_ref(resumed.param, "SGD", w0, x, t, 8)
    assert_weights_close(fresh, ref.w)


@pytest.mark.parametrize("policy", ["cosine", "Step", "triangular"])
def test_unknown_lr_policy_is_an_error(policy, tmp_path):
    net = build_net(regression_text())
    with pytest.raises(PrunekitError, match="lr_policy"):
        solver = make_solver(f'base_lr: 0.1 lr_policy: "{policy}"', net, tmp_path)
        solver.step(1)
