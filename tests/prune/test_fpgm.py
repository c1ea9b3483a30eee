"""FPGM_Row prunes the filters nearest the geometric median (brute force check) and keeps them 0."""

from __future__ import annotations

import itertools

import torch

from prunekit.prune.methods.fpgm import FPGM, distance_sums
from prunekit.prune.methods.l1_filter import L1Filter
from zoo_net import make_solver, weight


def _brute_distance_sums(w: torch.Tensor, kept: list[int]) -> list[float]:
    rows = w.reshape(w.shape[0], -1).double()
    return [sum(float(torch.sqrt(((rows[j] - rows[k]) ** 2).sum())) for k in kept)
            for j in range(rows.shape[0])]


def test_distance_sums_match_brute_force():
    w = torch.randn(6, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    kept = torch.tensor([True, True, False, True, True, True])
    got = distance_sums(w, kept)
    expected = _brute_distance_sums(w, [0, 1, 3, 4, 5])
    assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64))


def test_fpgm_prunes_the_filters_nearest_the_median_not_the_smallest(tmp_path):
    solver, hook = make_solver(tmp_path, "FPGM_Row", {"conv2": 0.25})
    assert isinstance(hook, FPGM)
    conv2 = solver.net.layer("conv2")
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():  # all filters share a base; 0..2 sit at it, 3..5 are small but far
        base = 3 * torch.randn(conv2.weight.shape[1:], generator=gen)
        for j in range(12):
            noise = torch.randn(conv2.weight.shape[1:], generator=gen)
            conv2.weight[j] = base + (1e-3 if j < 3 else 1.0) * noise
        conv2.weight[3:6] *= 0.2
    w = weight(solver, "conv2")
    sums = _brute_distance_sums(w, list(range(12)))
    expected = sorted(range(12), key=lambda j: sums[j])[:3]
    solver.step(3)
    zero_rows = (weight(solver, "conv2").reshape(12, -1) == 0).all(1)
    assert sorted(torch.nonzero(zero_rows).flatten().tolist()) == sorted(expected)
    # L1 would have chosen the small, far filters 3..5: the rules differ on this net
    l1 = w.reshape(12, -1).abs().sum(1)
    assert set(torch.argsort(l1)[:3].tolist()) == {3, 4, 5}
    assert sorted(expected) == [0, 1, 2]


def test_l1_row_prunes_smallest_l1_filters_in_two_rounds(tmp_path):
    solver, hook = make_solver(tmp_path, "L1_Row", {"conv1": 0.5, "conv2": 0.5},
                               "prune_rounds: 2\nprune_interval: 4", max_iter=8)
    assert isinstance(hook, L1Filter)
    w = weight(solver, "conv1")
    first = set(torch.argsort(w.reshape(8, -1).abs().sum(1))[:2].tolist())
    solver.step(1)
    zero = (weight(solver, "conv1").reshape(8, -1) == 0).all(1)
    assert set(torch.nonzero(zero).flatten().tolist()) == first
    solver.step(7)
    for name, n in (("conv1", 8), ("conv2", 12)):
        zero = (weight(solver, name).reshape(n, -1) == 0).all(1)
        assert int(zero.sum()) == n // 2, name
    assert first <= set(torch.nonzero((weight(solver, "conv1").reshape(8, -1) == 0).all(1))
                        .flatten().tolist())
    assert list(itertools.islice(hook.layers, 5))[0].name == "conv1"
