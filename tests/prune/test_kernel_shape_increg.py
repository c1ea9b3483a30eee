"""Reg_Shape: IncReg on the edges of the kept kernel window, one edge pruned at a time."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from prunekit.errors import PrunekitError
from prunekit.prune.increg.kernel_shape import KernelShapeIncReg, ShapeState, edge_scores, ranks
from zoo_net import make_solver, weight

FAST = "AA: 0.1\ntarget_reg: 0.5\nprune_begin_iter: 0"   # an edge goes after 5 iterations


def test_ranks_skip_edges_that_cannot_go() -> None:
    assert ranks(np.array([3.0, 1.0, 2.0, 0.5]), [True] * 4).tolist() == [3, 1, 2, 0]
    assert ranks(np.array([3.0, 1.0, 2.0, 0.5]), [True, True, False, False]).tolist() == \
        [1, 0, -1, -1]
    assert ranks(np.array([1.0, 1.0, 1.0, 1.0]), [True] * 4).tolist() == [0, 1, 2, 3]  # stable


def test_edge_scores_are_mean_abs_of_the_window_edges() -> None:
    tap_l1 = np.arange(25, dtype=float).reshape(5, 5)
    state = ShapeState([1, 4, 0, 3])          # rows 1..3, columns 0..2
    assert edge_scores(tap_l1, state).tolist() == [6.0, 16.0, 10.0, 12.0]
    state.drop(3)
    assert state.window == [1, 4, 0, 2] and state.taps() == 6


def _weaken(solver, rows=(), cols=()) -> None:
    with torch.no_grad():
        w = solver.net.layer("conv2").weight
        for r in rows:
            w[:, :, r, :] *= 0.01
        for c in cols:
            w[:, :, :, c] *= 0.01


def test_first_step_regularises_only_the_weakest_edge(tmp_path) -> None:
    solver, hook = make_solver(tmp_path, "Reg_Shape", {"conv2": 0.6}, FAST, max_iter=1)
    assert isinstance(hook, KernelShapeIncReg)
    _weaken(solver, cols=[4])
    w = solver.net.layer("conv2").weight
    w.grad = torch.zeros_like(w)
    hook.on_start(solver)
    with torch.no_grad():
        hook.penalise(solver)
    state = hook.states[0]
    assert state.lam == [0.0, 0.0, 0.0, pytest.approx(0.1)]   # rank 0: +AA; others <= 0 -> 0
    expected = torch.zeros_like(w)
    expected[:, :, :, 4] = 0.1 * w.detach()[:, :, :, 4]
    torch.testing.assert_close(w.grad, expected)


def test_weak_edges_go_first_and_the_kernel_stays_a_window(tmp_path) -> None:
    solver, hook = make_solver(tmp_path, "Reg_Shape", {"conv2": 0.6}, FAST, max_iter=40)
    _weaken(solver, rows=[0], cols=[3, 4])
    hook.out = io.StringIO()
    solver.step(40)
    log = hook.out.getvalue()
    pruned = [line.split("prunes its kernel ")[1].split(" (")[0] for line in log.splitlines()
              if "prunes its kernel" in line]
    assert sorted(pruned[:3]) == ["right column", "right column", "top row"]
    assert "(target reached)" in log
    taps = (weight(solver, "conv2") != 0).any(0).any(0)
    rows, cols = torch.nonzero(taps.any(1)).flatten(), torch.nonzero(taps.any(0)).flatten()
    assert int(taps.sum()) <= 10 and int(taps.sum()) == len(rows) * len(cols)
    assert 0 not in rows.tolist() and {3, 4}.isdisjoint(cols.tolist())
    assert hook.states[0].done and hook.states[0].taps() == int(taps.sum())


def test_state_round_trips_through_the_solverstate_format(tmp_path) -> None:
    solver, hook = make_solver(tmp_path, "Reg_Shape", {"conv2": 0.6}, FAST, max_iter=7)
    hook.out = io.StringIO()
    solver.step(7)                           # one edge gone, the next one on its way
    buffer = io.BytesIO()
    torch.save(hook.state_dict(), buffer)
    state = torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)
    _, other = make_solver(tmp_path / "b", "Reg_Shape", {"conv2": 0.6}, FAST, max_iter=7)
    other.load_state_dict(state)
    assert other.states == hook.states and other.states[0].steps > 0
    assert torch.equal(other.layers[0].mask, hook.layers[0].mask)


def test_config_errors(tmp_path) -> None:
    with pytest.raises(PrunekitError, match="layer 'ip1' .*not a 2-D Convolution"):
        make_solver(tmp_path, "Reg_Shape", {"ip1": 0.5}, FAST)
    with pytest.raises(PrunekitError, match="acc_borderline: 0.9 .*not available with "
                                            "prune_method 'Reg_Shape'"):
        make_solver(tmp_path / "b", "Reg_Shape", {"conv2": 0.5},
                    FAST + "\nacc_borderline: 0.9\nbaseline_acc: 0.95")
    with pytest.raises(PrunekitError, match="target_reg must be > 0"):
        make_solver(tmp_path / "c", "Reg_Shape", {"conv2": 0.5}, "AA: 0.1\ntarget_reg: 0")
