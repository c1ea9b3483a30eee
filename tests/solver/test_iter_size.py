"""iter_size: N passes of batch B accumulate to the update of one pass of batch N·B."""

from __future__ import annotations

import numpy as np
import torch
from _solver_caffe_ref import (
    CaffeRef, assert_weights_close, build_net, euclidean, make_solver, regression_text,
    weights_of)

from prunekit.solver.hooks import SolverHook

HALF, ITERS, SEED = 3, 5, 11
SOLVER = ('base_lr: 0.05 momentum: 0.9 lr_policy: "fixed" weight_decay: 0.05 display: 1 '
          'type: "SGD"')


def dummy_batches(count: int) -> list[list[torch.Tensor]]:
    """The DummyData batches 0..count-1 that the iter_size net reads (same seed, same layer)."""
    source = build_net(regression_text(n=HALF, data="dummy"))
    source.set_seed(SEED)
    layer = source.layer("data")
    return [layer.next_batch() for _ in range(count)]


class FeedPairs(SolverHook):
    """Before each iteration, give the big-batch net batches 2k and 2k+1 concatenated."""

    name = "feed_pairs"

    def __init__(self, batches) -> None:
        self.batches = batches

    def before_forward(self, solver) -> None:
        a, b = self.batches[2 * solver.iter], self.batches[2 * solver.iter + 1]
        solver.net.layer("data").set_inputs([torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])])


def _losses(lines):
    return [float(m[1]) for m in lines.matching(r"Iteration \d+, loss = (\S+)")]


def test_iter_size_2_equals_double_batch(tmp_path, log_lines):
    small = build_net(regression_text(n=HALF, data="dummy"))
    small.set_seed(SEED)
    w0 = weights_of(small)
    solver_small = make_solver(SOLVER + " iter_size: 2", small, tmp_path)
    solver_small.step(ITERS)
    small_losses = _losses(log_lines)
    log_lines.lines.clear()

    batches = dummy_batches(2 * ITERS)
    big = build_net(regression_text(n=2 * HALF))
    with torch.no_grad():  # same starting weights as the iter_size net
        for mine, w in zip(big.param_blobs(), w0):
            mine.tensor.copy_(torch.from_numpy(w.astype(np.float32)))
    solver_big = make_solver(SOLVER, big, tmp_path, hooks=[FeedPairs(batches)])
    solver_big.step(ITERS)
    big_losses = _losses(log_lines)

    for a, b in zip(weights_of(small), weights_of(big)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # displayed loss = sum over passes / iter_size = the big batch's loss
    np.testing.assert_allclose(small_losses, big_losses, rtol=2e-5)
    assert len(small_losses) == ITERS

    # and both equal Caffe's arithmetic: summed diffs, Normalize (÷2), then decay, then SGD
    ref = CaffeRef(solver_small.param, "SGD", w0, (1, 1), (1, 1))
    ref_losses = []
    for k in range(ITERS):
        total_loss, summed = 0.0, [0.0, 0.0]
        for b in batches[2 * k: 2 * k + 2]:
            loss, grads = euclidean(ref.w[0], ref.w[1], b[0].numpy(), b[1].numpy())
            total_loss += loss
            summed = [s + g for s, g in zip(summed, grads)]
        ref_losses.append(total_loss / 2)
        ref.apply_update(summed)
    assert_weights_close(small, ref.w)
    np.testing.assert_allclose(small_losses, ref_losses, rtol=2e-5)


def test_iter_size_reads_consecutive_batches(tmp_path):
    """Each of the iter_size passes consumes its own batch (no batch is reused)."""
    net = build_net(regression_text(n=HALF, data="dummy"))
    net.set_seed(SEED)
    solver = make_solver(SOLVER + " iter_size: 3", net, tmp_path)
    solver.step(2)
    assert net.layer("data").batches_consumed == 6
