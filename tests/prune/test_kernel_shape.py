"""GL_Shape: group lasso on whole kernel rows/columns and a contiguous smaller kernel window."""

from __future__ import annotations

import pytest
import torch

from prunekit.errors import PrunekitError
from prunekit.prune.methods.kernel_shape import KernelShapeLasso, best_window
from zoo_net import make_solver, weight


def test_best_window_picks_the_strong_columns():
    energy = torch.full((5, 5), 0.1, dtype=torch.float64)
    energy[:, 2:4] = 5.0
    allowed = torch.ones(5, 5, dtype=torch.bool)
    assert best_window(energy, allowed, 10) == (0, 5, 2, 2)   # 5x2 at columns 2..3
    assert best_window(energy.t(), allowed, 10) == (2, 2, 0, 5)  # 2x5
    allowed[:, 3] = False  # outside the current window: cannot come back
    assert best_window(energy, allowed, 10) == (0, 5, 1, 2)


def test_penalty_is_the_gradient_of_row_and_column_lasso(tmp_path):
    solver, hook = make_solver(tmp_path, "GL_Shape", {"conv2": 0.6},
                               "sparsity_lambda: 0.25\nprune_begin_iter: 100", max_iter=1)
    assert isinstance(hook, KernelShapeLasso)
    w = solver.net.layer("conv2").weight
    w.grad = torch.zeros_like(w)
    hook.penalise(solver)
    ref = w.detach().double().clone().requires_grad_(True)
    loss = 0.25 * (sum(ref[:, :, h, :].norm() for h in range(5))
                   + sum(ref[:, :, :, c].norm() for c in range(5)))
    loss.backward()
    assert torch.allclose(w.grad.double(), ref.grad, atol=1e-6)


def test_run_leaves_a_rectangular_kernel(tmp_path):
    solver, hook = make_solver(tmp_path, "GL_Shape", {"conv2": 0.6},
                               "sparsity_lambda: 0.001\nprune_rounds: 2\nprune_interval: 3",
                               max_iter=6)
    solver.step(6)
    taps = (weight(solver, "conv2") != 0).any(0).any(0)
    rows, cols = torch.nonzero(taps.any(1)).flatten(), torch.nonzero(taps.any(0)).flatten()
    assert int(taps.sum()) <= 10 and int(taps.sum()) == len(rows) * len(cols)
    assert rows.tolist() == list(range(int(rows[0]), int(rows[-1]) + 1))
    assert cols.tolist() == list(range(int(cols[0]), int(cols[-1]) + 1))


def test_only_2d_convolutions(tmp_path):
    with pytest.raises(PrunekitError, match="layer 'ip1' .*not a 2-D Convolution"):
        make_solver(tmp_path, "GL_Shape", {"ip1": 0.5}, "sparsity_lambda: 0.1")
