"""Mag_Weight (Han et al. 2015): the smallest-magnitude weights go, in ramped rounds, and stay 0."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunekit.errors import PrunekitError
from prunekit.prune.methods.magnitude import MagnitudeWeight, magnitude_keep
from zoo_net import make_solver, weight


def test_magnitude_keep_prunes_the_smallest_and_keeps_old_prunes():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(7, 9, generator=gen)
    kept = torch.ones_like(w, dtype=torch.bool)
    kept[0, :4] = False  # already pruned (large values there must stay pruned)
    w[0, :4] = 10.0
    keep, threshold = magnitude_keep(w, kept, 0.5)
    n = int(63 * 0.5)
    assert int((~keep).sum()) == n
    assert not keep[0, :4].any()
    # brute force: the other n - 4 pruned are the smallest |w| among the kept ones
    free = np.abs(w.numpy()[kept.numpy()])
    expected = np.sort(free)[: n - 4]
    got = np.sort(np.abs(w.numpy()[kept.numpy() & ~keep.numpy()]))
    np.testing.assert_array_equal(got, expected)
    assert threshold == pytest.approx(float(expected.max()))


def test_rounds_ramp_to_the_target_and_pruned_weights_stay_zero(tmp_path):
    solver, hook = make_solver(tmp_path, "Mag_Weight", {"conv2": 0.8, "ip1": 0.6},
                               "prune_rounds: 3\nprune_interval: 5", max_iter=16)
    assert isinstance(hook, MagnitudeWeight)
    seen = []
    for _ in range(16):
        solver.step(1)
        w2, w3 = weight(solver, "conv2"), weight(solver, "ip1")
        seen.append((float((w2 == 0).float().mean()), float((w3 == 0).float().mean())))
    # round k at iterations 0, 5, 10 keeps (1 - ratio)^(k/3) (floor of the pruned count)
    def pruned(total, ratio, k):
        return int(total * (1 - (1 - ratio) ** (k / 3)) + 1e-9) / total
    assert seen[0] == pytest.approx((pruned(2400, 0.8, 1), pruned(4320, 0.6, 1)))
    assert seen[5] == pytest.approx((pruned(2400, 0.8, 2), pruned(4320, 0.6, 2)))
    assert seen[4] == seen[0] and seen[9] == seen[5]
    assert seen[15] == pytest.approx((0.8, 0.6))
    # conv1 has no prune_ratio: untouched; the mask is the final zero set
    assert (weight(solver, "conv1") != 0).all()
    mask = hook.layers[0].mask
    assert torch.equal(weight(solver, "conv2") == 0, mask == 0)


def test_weight_unit_only(tmp_path):
    with pytest.raises(PrunekitError, match="Mag_Row.*accepted.*Mag_Weight"):
        make_solver(tmp_path, "Mag_Row", {"conv2": 0.5})
