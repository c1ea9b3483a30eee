"""Slim_Channel (Network Slimming): L1 on the Scale factors γ, then the smallest-|γ| channels go
(filter, γ and β exactly 0); a conv without a Scale after it is a clear error."""

from __future__ import annotations

import pytest
import torch

from prunekit.errors import PrunekitError
from prunekit.prune.methods.slimming import NetworkSlimming
from zoo_net import NET, make_solver, weight

BN_NET = NET.replace('''layer {{ name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }}''', '''
layer {{ name: "bn2" type: "BatchNorm" bottom: "conv2" top: "conv2" }}
layer {{ name: "scale2" type: "Scale" bottom: "conv2" top: "conv2"
        scale_param {{ bias_term: true filler {{ type: "uniform" min: 0.5 max: 1.5 }} }} }}
layer {{ name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }}''')


def test_l1_on_gamma_then_smallest_channels_go(tmp_path):
    solver, hook = make_solver(tmp_path, "Slim_Channel", {"conv2": 0.5},
                               "sparsity_lambda: 0.25\nprune_begin_iter: 3", max_iter=6, net=BN_NET)
    assert isinstance(hook, NetworkSlimming)
    scale = solver.net.layer("scale2")
    gamma0 = scale.scale.detach().clone()
    scale.scale.grad = torch.zeros_like(scale.scale)
    hook.penalise(solver)  # the L1 subgradient λ·sign(γ)
    assert torch.equal(scale.scale.grad, 0.25 * torch.sign(gamma0))
    scale.scale.grad = None
    solver.step(3)
    smallest = set(torch.argsort(scale.scale.detach().abs().reshape(-1))[:6].tolist())
    solver.step(3)
    w = weight(solver, "conv2").reshape(12, -1)
    zero = set(torch.nonzero((w == 0).all(1)).flatten().tolist())
    assert zero == smallest
    gamma, beta = scale.scale.detach().reshape(-1), scale.bias.detach().reshape(-1)
    assert all(gamma[j] == 0 and beta[j] == 0 for j in zero)
    assert all(gamma[j] != 0 for j in set(range(12)) - zero)


def test_needs_a_scale_layer(tmp_path):
    with pytest.raises(PrunekitError, match="layer 'conv2' has prune_param but no Scale layer"):
        make_solver(tmp_path, "Slim_Channel", {"conv2": 0.5}, "sparsity_lambda: 0.1")
