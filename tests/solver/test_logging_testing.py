"""Caffe's training log: display lines, smoothed loss (average_loss), periodic tests, Solve."""

from __future__ import annotations

import os

import numpy as np
import pytest
from _solver_caffe_ref import (
    as_caffe_solverstate,
    CLASSIFY_TEXT, TEST, CaffeRef, build_net, feed, make_solver, regression_data,
    regression_text, run_regression_ref, softmax_loss, weights_of)

from prunekit.net.weights import share_weights

NUM = r"(-?[0-9.e+-]+|nan|inf)"


def _is_g6(text: str) -> bool:
    """Printed as C++ ostream does by default: %g with 6 significant digits."""
    return text == f"{float(text):.6g}"


# ------------------------------------------------------------------------ smoothed loss
def _smoothed(losses, window, start=0):
    """Caffe's displayed loss at each iteration: mean of the last ≤ window losses since start."""
    return [np.mean(losses[max(start, i - window + 1): i + 1]) for i in range(start, len(losses))]


@pytest.mark.parametrize("window", [1, 3])
def test_average_loss_window(window, tmp_path, log_lines):
    iters = 8
    net = build_net(regression_text())
    x, t = regression_data()
    feed(net, x, t)
    w0 = weights_of(net)
    solver = make_solver(f'base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" display: 1 '
                         f'average_loss: {window}', net, tmp_path)
    solver.step(iters)
    _, losses = run_regression_ref(solver.param, "SGD", w0, x, t, iters)
    assert len(set(np.round(losses, 4))) == iters  # the loss changes every iteration
    shown = log_lines.matching(rf"Iteration (\d+), loss = {NUM}")
    assert [int(m[1]) for m in shown] == list(range(iters))
    np.testing.assert_allclose([float(m[2]) for m in shown], _smoothed(losses, window), rtol=2e-5)
    assert all(_is_g6(m[2]) for m in shown)


def test_average_loss_window_after_caffe_solverstate(tmp_path, log_lines):
    """A solverstate without prunekit's extension (as Caffe writes it) restarts the window at the
    restored iteration, as Caffe's Step does: the mean covers only losses since the resume."""
    x, t = regression_data()
    text = 'base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" display: 1 average_loss: 2'
    net = build_net(regression_text())
    feed(net, x, t)
    w0 = weights_of(net)
    solver = make_solver(text, net, tmp_path)
    solver.step(3)
    _, state_path = solver.snapshot()
    caffe_state = as_caffe_solverstate(state_path, str(tmp_path / "caffe.solverstate"))

    fresh = build_net(regression_text(), seed=5)
    feed(fresh, x, t)
    resumed = make_solver(text, fresh, tmp_path)
    resumed.restore(caffe_state)
    log_lines.lines.clear()
    resumed.step(4)
    _, losses = run_regression_ref(resumed.param, "SGD", w0, x, t, 7)
    shown = log_lines.matching(rf"Iteration (\d+), loss = {NUM}")
    assert [int(m[1]) for m in shown] == [3, 4, 5, 6]
    np.testing.assert_allclose([float(m[2]) for m in shown], _smoothed(losses, 2, start=3),
                               rtol=2e-5)


# ------------------------------------------------------------------ display and test lines
def _classify_setup(tmp_path, solver_text):
    rng = np.random.default_rng(3)
    x_train = rng.standard_normal((6, 4)).astype(np.float32)
    y_train = np.array([0, 1, 2, 0, 1, 2], dtype=np.float32)
    x_test = rng.standard_normal((6, 4)).astype(np.float32)
    y_test = np.array([2, 1, 0, 0, 2, 1], dtype=np.float32)
    net = build_net(CLASSIFY_TEXT)
    test_net = build_net(CLASSIFY_TEXT, seed=9, phase=TEST)
    share_weights(test_net, net)
    feed(net, x_train, y_train)
    feed(test_net, x_test, y_test)
    w0 = weights_of(net)
    solver = make_solver(solver_text, net, tmp_path, test_nets=[test_net])
    return solver, w0, (x_train, y_train), (x_test, y_test)


def _classify_ref(param, w0, train, test, iters):
    """Reference run; per iteration: train loss, and test outputs at the weights before it."""
    ref = CaffeRef(param, "SGD", w0, (1, 1), (1, 1))
    train_losses, test_outputs = [], []
    for _ in range(iters + 1):
        _, _, acc, raw = softmax_loss(ref.w[0], ref.w[1], *test, loss_weight=0.5)
        test_outputs.append((acc, raw))
        if len(train_losses) == iters:
            break
        loss, grads, _, raw_train = softmax_loss(ref.w[0], ref.w[1], *train, loss_weight=0.5)
        train_losses.append((loss, raw_train))
        ref.apply_update(grads)
    return ref, train_losses, test_outputs


@pytest.mark.parametrize("test_initialization", [True, False])
def test_display_and_test_lines(test_initialization, tmp_path, log_lines):
    text = (f'base_lr: 0.5 momentum: 0.9 lr_policy: "fixed" display: 2 test_iter: 2 '
            f'test_interval: 2 test_compute_loss: true '
            f'test_initialization: {str(test_initialization).lower()}')
    solver, w0, train, test = _classify_setup(tmp_path, text)
    solver.step(5)
    ref, train_losses, test_outputs = _classify_ref(solver.param, w0, train, test, 5)

    # display every 2 iterations: loss (the net's weighted loss), train outputs, lr
    lines = log_lines.lines
    shown = log_lines.matching(rf"Iteration (\d+), loss = {NUM}")
    assert [int(m[1]) for m in shown] == [0, 2, 4]
    for m in shown:
        assert float(m[2]) == pytest.approx(train_losses[int(m[1])][0], rel=2e-5)
    train_out = log_lines.matching(
        rf"    Train net output #0: loss = {NUM} \(\* 0\.5 = {NUM} loss\)")
    assert len(train_out) == 3
    for m, it in zip(train_out, [0, 2, 4]):
        raw = train_losses[it][1]
        assert float(m[1]) == pytest.approx(raw, rel=2e-5)
        assert float(m[2]) == pytest.approx(0.5 * raw, rel=2e-5)
        assert _is_g6(m[1]) and _is_g6(m[2])
    assert [int(m[1]) for m in log_lines.matching(r"Iteration (\d+), lr = 0\.5")] == [0, 2, 4]
    # order within an iteration as in Caffe: loss line, output lines, then the lr line
    i = lines.index(shown[1].string)
    assert lines[i + 1].startswith("    Train net output #0")
    assert lines[i + 2] == "Iteration 2, lr = 0.5"

    # tests: at iteration 0 only with test_initialization, then every test_interval, before
    # that iteration's update; outputs in alphabetical blob order, the loss with its weight
    tested = [int(m[1]) for m in log_lines.matching(r"Iteration (\d+), Testing net \(#0\)")]
    assert tested == ([0, 2, 4] if test_initialization else [2, 4])
    acc_lines = log_lines.matching(rf"    Test net output #0: accuracy = {NUM}")
    loss_lines = log_lines.matching(
        rf"    Test net output #1: loss = {NUM} \(\* 0\.5 = {NUM} loss\)")
    test_loss = log_lines.matching(rf"Test loss: {NUM}")
    assert len(acc_lines) == len(loss_lines) == len(test_loss) == len(tested)
    for it, a, lo, tl in zip(tested, acc_lines, loss_lines, test_loss):
        acc, raw = test_outputs[it]
        assert float(a[1]) == pytest.approx(acc, abs=1e-6)
        assert float(lo[1]) == pytest.approx(raw, rel=2e-5)
        assert float(lo[2]) == pytest.approx(0.5 * raw, rel=2e-5)
        assert float(tl[1]) == pytest.approx(0.5 * raw, rel=2e-5)
    # the test outputs really change between tests (so a stale/unshared test net would fail)
    assert test_outputs[2][1] != pytest.approx(test_outputs[4][1], rel=1e-3)


def test_no_display_no_lines(tmp_path, log_lines):
    solver, *_ = _classify_setup(tmp_path, 'base_lr: 0.1 lr_policy: "fixed" test_iter: 1')
    solver.step(3)
    assert not log_lines.matching(r"Iteration \d+, (loss|lr) = .*")
    assert not log_lines.matching(r"Iteration \d+, Testing net.*")  # test_interval 0: never


def test_solve_final_snapshot_display_and_test(tmp_path, log_lines):
    text = ('base_lr: 0.5 momentum: 0.9 lr_policy: "fixed" display: 2 test_iter: 1 '
            'test_interval: 2 max_iter: 4 average_loss: 1')
    solver, w0, train, test = _classify_setup(tmp_path, text)
    solver.solve()
    ref, train_losses, test_outputs = _classify_ref(solver.param, w0, train, test, 4)
    assert solver.iter == 4
    # snapshot_after_train (default true) with snapshot 0: one final snapshot at max_iter
    for ext in ("caffemodel", "solverstate"):
        assert os.path.isfile(tmp_path / f"s_iter_4.{ext}")
    # after the loop Caffe forwards once more and displays the loss at max_iter, then tests
    final = log_lines.matching(rf"Iteration 4, loss = {NUM}")
    assert len(final) == 1
    _, _, _, raw = softmax_loss(ref.w[0], ref.w[1], *train, loss_weight=0.5)
    assert float(final[0][1]) == pytest.approx(0.5 * raw, rel=2e-5)
    tested = [int(m[1]) for m in log_lines.matching(r"Iteration (\d+), Testing net \(#0\)")]
    assert tested == [0, 2, 4]
    acc_lines = log_lines.matching(rf"    Test net output #0: accuracy = {NUM}")
    assert float(acc_lines[-1][1]) == pytest.approx(test_outputs[4][0], abs=1e-6)
    assert log_lines.lines[-1] == "Optimization Done."
