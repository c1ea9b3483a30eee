"""GL_<unit>: the penalty is the gradient of λ·Σ‖w_g‖₂ over the unit's groups; rounds prune the
weakest groups; GL needs sparsity_lambda."""

from __future__ import annotations

import pytest
import torch

from prunekit.errors import PrunekitError
from prunekit.prune.methods.group_lasso import (
    GroupLasso, add_group_lasso_grad_, group_dims, prune_weakest_groups)
from zoo_net import make_solver, weight

GROUPS = {  # unit -> the groups of a [N, C, kh, kw] weight, brute force
    "Row": lambda w: [w[n] for n in range(w.shape[0])],
    "Col": lambda w: [w[:, c, i, j] for c in range(w.shape[1]) for i in range(w.shape[2])
                      for j in range(w.shape[3])],
    "Channel": lambda w: [w[:, c] for c in range(w.shape[1])],
}


@pytest.mark.parametrize("unit", sorted(GROUPS))
def test_penalty_is_the_group_lasso_gradient(unit):
    w = torch.randn(4, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    w.requires_grad_(True)
    lam = 0.3
    loss = lam * sum(g.norm() for g in GROUPS[unit](w))
    loss.backward()
    grad = torch.zeros_like(w)
    add_group_lasso_grad_(grad, w.detach(), group_dims(unit, w), lam)
    assert torch.allclose(grad, w.grad)


def test_prune_weakest_channels():
    w = torch.randn(4, 5, 3, 3, generator=torch.Generator().manual_seed(3))
    w[:, 2] *= 0.01
    w[:, 4] *= 0.02
    keep = prune_weakest_groups(w, torch.ones_like(w, dtype=torch.bool), group_dims("Channel", w), 0.4)
    assert [bool(keep[:, c].any()) for c in range(5)] == [True, True, False, True, False]


def test_gl_row_run_prunes_filters(tmp_path):
    solver, hook = make_solver(tmp_path, "GL_Row", {"conv2": 0.5},
                               "sparsity_lambda: 0.001\nprune_begin_iter: 5", max_iter=8)
    assert isinstance(hook, GroupLasso)
    solver.step(8)
    zero = (weight(solver, "conv2").reshape(12, -1) == 0).all(1)
    assert int(zero.sum()) == 6


def test_gl_needs_lambda(tmp_path):
    with pytest.raises(PrunekitError, match="sparsity_lambda must be > 0 with prune_method 'GL_Col'"):
        make_solver(tmp_path, "GL_Col", {"conv2": 0.5})
