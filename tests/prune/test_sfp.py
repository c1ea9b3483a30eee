"""SFP_Row: zeroed filters keep training between rounds (soft); the last round's mask is hard."""

from __future__ import annotations

import torch

from prunekit.prune.methods.sfp import SoftFilter
from zoo_net import make_solver, weight


def _zero_rows(solver, name: str, n: int) -> set[int]:
    w = weight(solver, name).reshape(n, -1)
    return set(torch.nonzero((w == 0).all(1)).flatten().tolist())


def test_soft_then_hard(tmp_path):
    solver, hook = make_solver(tmp_path, "SFP_Row", {"conv2": 0.5},
                               "prune_rounds: 3\nprune_interval: 4", max_iter=14)
    assert isinstance(hook, SoftFilter)
    with torch.no_grad():  # a positive bias: a zeroed filter's ReLU still passes gradient
        solver.net.layer("conv2").bias.fill_(0.1)
    w = weight(solver, "conv2").reshape(12, -1)
    smallest = set(torch.argsort(w.double().norm(dim=1))[:6].tolist())
    solver.step(1)  # round 1 at iteration 0, then one update
    assert _zero_rows(solver, "conv2", 12) == set()  # soft: they trained on
    assert hook.layers[0].mask is not None
    assert {j for j in range(12) if hook.layers[0].mask[j].sum() == 0} == smallest
    solver.step(8)  # round 3 at iteration 8 is the last one: its mask stays
    zero = _zero_rows(solver, "conv2", 12)
    assert len(zero) == 6
    solver.step(5)
    assert _zero_rows(solver, "conv2", 12) == zero


def test_resume_between_rounds_gives_the_same_model(tmp_path):
    """A --snapshot resume in the middle of the soft rounds continues exactly (masks, rounds)."""
    extra = "prune_rounds: 3\nprune_interval: 4"
    whole, _ = make_solver(tmp_path / "whole", "SFP_Row", {"conv2": 0.5}, extra, max_iter=12)
    whole.step(12)
    part, _ = make_solver(tmp_path / "part", "SFP_Row", {"conv2": 0.5}, extra, max_iter=12)
    part.step(6)
    _, state = part.snapshot()
    resumed, hook = make_solver(tmp_path / "part", "SFP_Row", {"conv2": 0.5}, extra, max_iter=12)
    resumed.restore(state)
    assert hook.rounds_done == 2 and hook.layers[0].mask is not None
    resumed.step(6)
    for name in ("conv1", "conv2", "ip1"):
        assert torch.equal(weight(resumed, name), weight(whole, name)), name
