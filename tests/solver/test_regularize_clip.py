"""Weight decay (L2/L1, decay_mult), lr_mult (incl. frozen blobs) and clip_gradients."""

from __future__ import annotations

import numpy as np
import pytest
from _solver_caffe_ref import (
    CaffeRef, assert_weights_close, build_net, euclidean, feed, make_solver, param_block,
    regression_data, regression_text, run_regression_ref, weights_of)

from prunekit.errors import PrunekitError

ITERS = 5


def _train(tmp_path, solver_text, params=("", ""), bias_value=0.1, iters=ITERS):
    net = build_net(regression_text(params=params, bias_value=bias_value))
    x, t = regression_data()
    feed(net, x, t)
    w0 = weights_of(net)
    solver = make_solver(solver_text, net, tmp_path)
    solver.step(iters)
    return net, solver, w0, x, t


@pytest.mark.parametrize("kind", ["L2", "L1"])
@pytest.mark.parametrize("mults", [((1, 1), (1, 1)), ((1, 2), (3, 0)), ((0.5, 1), (0, 2))])
def test_weight_decay_and_mults(kind, mults, tmp_path):
    lr_mults, decay_mults = mults
    params = tuple(param_block(lr, dm) for lr, dm in zip(lr_mults, decay_mults))
    # bias starts at 0: L1 must use sign(0) = 0 there (caffe_cpu_sign)
    net, solver, w0, x, t = _train(
        tmp_path, f'base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" weight_decay: 0.1 '
                  f'regularization_type: "{kind}"', params, bias_value=0.0)
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS, lr_mults, decay_mults)
    assert_weights_close(net, ref.w)


def test_l1_and_l2_differ(tmp_path):
    """Guards the test above: on this net the two decay kinds give different weights."""
    a, *_ = _train(tmp_path, 'base_lr: 0.05 lr_policy: "fixed" weight_decay: 0.1 '
                             'regularization_type: "L2"')
    b, *_ = _train(tmp_path, 'base_lr: 0.05 lr_policy: "fixed" weight_decay: 0.1 '
                             'regularization_type: "L1"')
    assert np.abs(weights_of(a)[0] - weights_of(b)[0]).max() > 1e-3


@pytest.mark.parametrize("solver_type", ["SGD", "Adam", "AdaGrad"])
def test_lr_mult_zero_freezes_blob(solver_type, tmp_path):
    params = (param_block(0, 1), param_block(1, 1))
    extra = "momentum: 0.9" if solver_type != "AdaGrad" else ""
    net, solver, w0, x, t = _train(
        tmp_path, f'type: "{solver_type}" base_lr: 0.05 {extra} lr_policy: "fixed" '
                  f'weight_decay: 0.1', params)
    got = weights_of(net)
    np.testing.assert_array_equal(got[0], w0[0])  # frozen: bit-for-bit unchanged
    assert np.abs(got[1] - w0[1]).max() > 1e-3  # the bias still trains
    ref, _ = run_regression_ref(solver.param, solver_type, w0, x, t, ITERS, (0, 1), (1, 1))
    assert_weights_close(net, ref.w)


def test_unknown_regularization_type(tmp_path):
    text = 'base_lr: 0.05 lr_policy: "fixed" regularization_type: "L3"'
    with pytest.raises(PrunekitError, match="regularization_type"):
        _train(tmp_path, text + " weight_decay: 0.1")
    # Caffe only looks at the type when there is decay to apply
    net, solver, w0, x, t = _train(tmp_path, text)
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS)
    assert_weights_close(net, ref.w)


def test_clip_gradients_scales_global_norm(tmp_path, log_lines):
    # lr_mult 0 on the weight: its gradient must not count in the norm (Caffe computes no diff
    # for it), while weight decay is applied after clipping.
    params = (param_block(0, 1), param_block(1, 1))
    net, solver, w0, x, t = _train(
        tmp_path, 'base_lr: 0.1 momentum: 0.9 lr_policy: "fixed" weight_decay: 0.01 '
                  'clip_gradients: 0.05', params)
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS, (0, 1), (1, 1))
    assert all(s is not None and s < 0.9 for s in ref.clip_scales)  # clipping really happened
    assert_weights_close(net, ref.w)
    lines = log_lines.matching(r"Gradient clipping: scaling down gradients \(L2 norm (\S+) > "
                               r"(\S+)\) by scale factor (\S+)")
    assert len(lines) == ITERS
    for m, scale in zip(lines, ref.clip_scales):
        assert float(m[2]) == pytest.approx(0.05)
        assert float(m[3]) == pytest.approx(scale, rel=1e-4)
        assert float(m[1]) == pytest.approx(0.05 / scale, rel=1e-4)


def test_clip_gradients_two_blobs_and_iter_size(tmp_path):
    # Caffe clips the diffs summed over iter_size passes, before Normalize divides them.
    net, solver, w0, x, t = _train(
        tmp_path, 'base_lr: 0.1 momentum: 0.9 lr_policy: "fixed" weight_decay: 0.01 '
                  'clip_gradients: 2 iter_size: 2')
    ref = CaffeRef(solver.param, "SGD", w0, (1, 1), (1, 1))
    for _ in range(ITERS):
        _, grads = euclidean(ref.w[0], ref.w[1], x, t)
        ref.apply_update([2 * g for g in grads])  # two identical passes, summed
    # both branches: norms just above the threshold (scale in (0.5, 1)) and, later, below it
    assert sum(s is not None and 0.5 < s < 1 for s in ref.clip_scales) >= 2
    assert ref.clip_scales[-1] is None
    assert_weights_close(net, ref.w)


def test_clip_gradients_above_norm_changes_nothing(tmp_path, log_lines):
    base = 'base_lr: 0.1 momentum: 0.9 lr_policy: "fixed" weight_decay: 0.01'
    a, *_ = _train(tmp_path, base + " clip_gradients: 1000")
    b, *_ = _train(tmp_path, base)
    for wa, wb in zip(weights_of(a), weights_of(b)):
        np.testing.assert_array_equal(wa, wb)
    assert not log_lines.matching(r"Gradient clipping.*")


def test_clip_gradients_zero_clips_everything(tmp_path):
    # Caffe skips clipping only for clip_gradients < 0 (default -1): 0 scales diffs to zero, so
    # only weight decay moves the weights.
    net, solver, w0, x, t = _train(
        tmp_path, 'base_lr: 0.1 lr_policy: "fixed" weight_decay: 0.5 clip_gradients: 0')
    ref, _ = run_regression_ref(solver.param, "SGD", w0, x, t, ITERS)
    assert all(s == 0 for s in ref.clip_scales)
    assert_weights_close(net, ref.w)
    np.testing.assert_allclose(weights_of(net)[0], w0[0] * (1 - 0.1 * 0.5) ** ITERS, rtol=1e-5)
