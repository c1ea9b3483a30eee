"""Every Caffe update rule against an independent numpy ComputeUpdateValue, and solver types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _solver_caffe_ref import (
    assert_weights_close, build_net, feed, make_solver, param_block, regression_data,
    regression_text, run_regression_ref, weights_of)

from prunekit import caffe
from prunekit.errors import PrunekitError

# type → solver settings (weight decay on, blobs with different lr_mult/decay_mult)
RULES = {
    "SGD": 'base_lr: 0.05 momentum: 0.9',
    "Nesterov": 'base_lr: 0.05 momentum: 0.9',
    "AdaGrad": 'base_lr: 0.1 delta: 1e-6',
    "RMSProp": 'base_lr: 0.01 rms_decay: 0.95 delta: 1e-6',
    "AdaDelta": 'base_lr: 1.0 momentum: 0.95 delta: 1e-6',
    "Adam": 'base_lr: 0.01 momentum: 0.9 momentum2: 0.99 delta: 1e-8',
}
LR_MULTS, DECAY_MULTS = (1, 2), (1, 0)
PARAMS = (param_block(1, 1), param_block(2, 0))
ITERS = 6


def _train(kind: str, tmp_path, solver_line: str):
    text = regression_text(params=PARAMS)
    net = build_net(text)
    x, t = regression_data()
    feed(net, x, t)
    w0 = weights_of(net)
    solver = make_solver(f'{solver_line} lr_policy: "fixed" weight_decay: 0.02', net, tmp_path)
    solver.step(ITERS)
    return net, solver, w0, x, t


@pytest.mark.parametrize("kind", list(RULES))
def test_rule_matches_caffe_formula(kind, tmp_path):
    net, solver, w0, x, t = _train(kind, tmp_path, f'type: "{kind}" {RULES[kind]}')
    ref, _ = run_regression_ref(solver.param, kind, w0, x, t, ITERS, LR_MULTS, DECAY_MULTS)
    assert solver.iter == ITERS
    assert_weights_close(net, ref.w)
    # the weights really moved (a rule that returns 0 would pass a loose comparison)
    assert all(np.abs(w - w_init).max() > 1e-3 for w, w_init in zip(ref.w, w0))
    # history: Caffe's layout, one set per param, a second set after the first for AdaDelta/Adam
    sets = 2 if kind in ("AdaDelta", "Adam") else 1
    assert len(solver.history) == sets * len(net.param_blobs()) == len(ref.history)
    for got, want in zip(solver.history, ref.history):
        np.testing.assert_allclose(got.numpy(), want, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["AdaDelta", "Adam", "SGD"])
def test_solverstate_history_count(kind, tmp_path):
    net, solver, *_ = _train(kind, tmp_path, f'type: "{kind}" {RULES[kind]}')
    _, state_path = solver.snapshot()
    state = caffe.read_solverstate(state_path)
    params = len(net.param_blobs())
    assert len(state.history) == (2 if kind != "SGD" else 1) * params
    assert state.iter == ITERS
    for blob, hist in zip(state.history, solver.history):
        np.testing.assert_array_equal(caffe.blob_to_array(blob).reshape(hist.shape), hist.numpy())


LEGACY = {"SGD": "SGD", "NESTEROV": "Nesterov", "ADAGRAD": "AdaGrad", "RMSPROP": "RMSProp",
          "ADADELTA": "AdaDelta", "ADAM": "Adam"}


@pytest.mark.parametrize("enum", list(LEGACY))
def test_deprecated_solver_type_enum(enum, tmp_path):
    kind = LEGACY[enum]
    net_new, solver_new, *_ = _train(kind, tmp_path, f'type: "{kind}" {RULES[kind]}')
    net_old, solver_old, w0, x, t = _train(kind, tmp_path, f'solver_type: {enum} {RULES[kind]}')
    assert len(solver_old.history) == len(solver_new.history)
    for a, b in zip(weights_of(net_old), weights_of(net_new)):
        np.testing.assert_array_equal(a, b)
    ref, _ = run_regression_ref(solver_old.param, kind, w0, x, t, ITERS, LR_MULTS, DECAY_MULTS)
    assert_weights_close(net_old, ref.w)


def test_default_type_is_sgd(tmp_path):
    net, solver, w0, x, t = _train("SGD", tmp_path, 'base_lr: 0.05 momentum: 0.9')
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS, LR_MULTS, DECAY_MULTS)
    assert_weights_close(net, ref.w)


@pytest.mark.parametrize("line", ['type: "Adagrad"', 'type: "sgd"', 'type: "LBFGS"'])
def test_unknown_type_is_an_error(line, tmp_path):
    net = build_net(regression_text())
    with pytest.raises(PrunekitError, match="type"):
        make_solver(f'{line} base_lr: 0.1 lr_policy: "fixed"', net, tmp_path)


def test_type_and_solver_type_together_is_an_error(tmp_path):
    # Caffe's UpgradeSolverType refuses a file that sets both spellings.
    net = build_net(regression_text())
    with pytest.raises(PrunekitError, match="solver_type"):
        make_solver('type: "Adam" solver_type: NESTEROV base_lr: 0.1 lr_policy: "fixed"',
                    net, tmp_path)


def test_nesterov_differs_from_sgd(tmp_path):
    """Guards the comparisons above: the two momentum rules must not coincide on this net."""
    a, *_ = _train("SGD", tmp_path, 'type: "SGD" ' + RULES["SGD"])
    b, *_ = _train("Nesterov", tmp_path, 'type: "Nesterov" ' + RULES["Nesterov"])
    assert not torch.allclose(a.param_blobs()[0].tensor, b.param_blobs()[0].tensor, atol=1e-4)
