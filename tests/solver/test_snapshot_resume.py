"""Snapshots: Caffe's file names and solverstate content; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from _solver_caffe_ref import (
    as_caffe_solverstate,
    assert_weights_close, build_net, feed, make_solver, regression_data, regression_text,
    run_regression_ref, weights_of)

from prunekit import caffe
from prunekit.errors import PrunekitError

SOLVER = ('type: "Adam" base_lr: 0.02 momentum: 0.9 momentum2: 0.99 weight_decay: 0.01 '
          'lr_policy: "multistep" gamma: 0.5 stepvalue: 2 stepvalue: 5 display: 1 '
          'average_loss: 3 iter_size: 2')
SEED = 21


def _dummy_solver(tmp_path, init_seed=0, text=SOLVER, sub="run"):
    folder = tmp_path / sub
    folder.mkdir(exist_ok=True)
    net = build_net(regression_text(n=3, data="dummy", dropout=True), seed=init_seed)
    net.set_seed(SEED)
    return make_solver(text, net, folder), net


def _loss_lines(log_lines, first):
    return [m.string for m in log_lines.matching(r"Iteration (\d+), loss = \S+")
            if int(m[1]) >= first]


def test_resume_continues_exactly(tmp_path, log_lines):
    full, full_net = _dummy_solver(tmp_path, sub="full")
    full.step(8)
    uninterrupted = _loss_lines(log_lines, 4)
    log_lines.lines.clear()

    first, _ = _dummy_solver(tmp_path, sub="first")
    first.step(4)
    model_path, state_path = first.snapshot()
    assert model_path == str(tmp_path / "first" / "s_iter_4.caffemodel")
    assert state_path == str(tmp_path / "first" / "s_iter_4.solverstate")
    torch.manual_seed(1234)  # the restore must bring the RNG state back too
    log_lines.lines.clear()

    second, second_net = _dummy_solver(tmp_path, init_seed=99, sub="second")
    assert not torch.equal(second_net.param_blobs()[0].tensor, full_net.param_blobs()[0].tensor)
    second.restore(state_path)
    assert (second.iter, second.current_step) == (4, 1)
    second.step(4)
    assert (second.iter, second.current_step) == (full.iter, full.current_step) == (8, 2)
    for a, b in zip(weights_of(second_net), weights_of(full_net)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(second.history, full.history):
        assert torch.equal(a, b)
    # same smoothed losses (window of 3 carried over) and the same data batches consumed
    assert _loss_lines(log_lines, 4) == uninterrupted
    assert second_net.layer("data").batches_consumed == full_net.layer("data").batches_consumed


def test_periodic_snapshot_files_and_state(tmp_path):
    solver, net = _dummy_solver(tmp_path, text=SOLVER + " snapshot: 3")
    solver.step(7)
    folder = tmp_path / "run"
    names = sorted(os.listdir(folder))
    assert names == ["s_iter_3.caffemodel", "s_iter_3.solverstate",
                     "s_iter_6.caffemodel", "s_iter_6.solverstate"]
    state = caffe.read_solverstate(str(folder / "s_iter_6.solverstate"))
    assert state.iter == 6
    assert state.current_step == 2
    assert state.learned_net == str(folder / "s_iter_6.caffemodel")
    blobs = net.param_blobs()
    assert len(state.history) == 2 * len(blobs)  # Adam: m for every param, then v
    for hist, blob in zip(state.history, blobs + blobs):
        assert tuple(caffe.blob_to_array(hist).shape) == tuple(blob.tensor.shape)
    # the caffemodel holds the weights of iteration 6: restore it into a fresh net and compare
    fresh, fresh_net = _dummy_solver(tmp_path, init_seed=5, text=SOLVER, sub="fresh")
    fresh.restore(str(folder / "s_iter_6.solverstate"))
    fresh.step(1)
    for a, b in zip(weights_of(fresh_net), weights_of(net)):
        np.testing.assert_array_equal(a, b)


def test_resume_from_caffe_written_solverstate(tmp_path):
    """A solverstate without the prunekit extension (what Caffe writes) restores weights,
    history, iter and current_step; on fixed data the run then continues exactly."""
    text = ('type: "Nesterov" base_lr: 0.05 momentum: 0.9 weight_decay: 0.01 '
            'lr_policy: "multistep" gamma: 0.5 stepvalue: 2 stepvalue: 4')
    x, t = regression_data()
    net = build_net(regression_text())
    feed(net, x, t)
    w0 = weights_of(net)
    solver = make_solver(text, net, tmp_path)
    solver.step(3)
    _, state_path = solver.snapshot()
    caffe_path = as_caffe_solverstate(state_path, str(tmp_path / "from_caffe.solverstate"))

    fresh = build_net(regression_text(), seed=3)
    feed(fresh, x, t)
    resumed = make_solver(text, fresh, tmp_path)
    resumed.restore(caffe_path)
    assert (resumed.iter, resumed.current_step) == (3, 1)
    resumed.step(3)
    ref, _ = run_regression_ref(resumed.param, "Nesterov", w0, x, t, 6)
    assert ref.current_step == resumed.current_step == 2
    assert_weights_close(fresh, ref.w)


def test_restore_with_wrong_history_count_is_an_error(tmp_path):
    adam, _ = _dummy_solver(tmp_path)
    adam.step(1)
    _, state_path = adam.snapshot()
    sgd, _ = _dummy_solver(tmp_path, text='type: "SGD" base_lr: 0.1 lr_policy: "fixed"',
                           sub="sgd")
    with pytest.raises(PrunekitError, match="history"):
        sgd.restore(state_path)
