"""The Reg_Col hook in-process on a tiny net: its per-group state is host float64 arrays, the
gradient term it adds is exactly λ⊙w (λ rounded to the weights' float32, spread per column), the
[app] "reduce reg" lines name the groups whose λ fell, and the stage-end clearing of left-over λ
works on the host arrays."""

from __future__ import annotations

import io
import math

import numpy as np
import torch

from prunekit import caffe
from prunekit.solver.nets import build_nets
from prunekit.prune.config import PruneConfig
from prunekit.prune.increg.hook import IncReg, add_reg_term_host_, add_reg_term_torch_
from prunekit.prune.registry import make_method
from prunekit.solver.hooks import SolverHook
from prunekit.solver.solver import Solver

SEED = 11

NET = """
name: "Tiny"
layer {
  name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param {
    shape { dim: 4 dim: 1 dim: 6 dim: 6 }
    shape { dim: 4 }
    data_filler { type: "gaussian" std: 1 }
    data_filler { type: "uniform" min: 0 max: 3.99 }
  }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  prune_param { prune_ratio: 0.5 }
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "xavier" } }
}
layer {
  name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1"
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""

SOLVER = """
net: "{net}"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 0
max_iter: 1000
snapshot_prefix: "{prefix}"
random_seed: {seed}
solver_mode: CPU
prune_method: "Reg_Col"
AA: 0.01
target_reg: 0.1
acc_borderline: -1
losseval_interval: 5
retrain_test_interval: 2
"""


class _GradSpy(SolverHook):
    """Keeps a copy of conv1's gradient when its before_update runs."""

    def __init__(self) -> None:
        self.grads: list[torch.Tensor] = []
        self.solver = None

    def before_update(self, solver) -> None:
        self.grads.append(solver.net.layer("conv1").weight.grad.detach().clone())


def _setup(tmp_path):
    net_path = tmp_path / "train_val.prototxt"
    net_path.write_text(NET)
    solver_path = tmp_path / "solver.prototxt"
    solver_path.write_text(SOLVER.format(net=net_path, prefix=tmp_path / "snap", seed=SEED))
    param = caffe.read_solver_prototxt(str(solver_path))
    torch.manual_seed(SEED)
    config = PruneConfig.from_solver(param, str(solver_path))
    net, test_nets, train_param = build_nets(param, str(solver_path), torch.device("cpu"), SEED)
    solver = Solver(param, net, test_nets, snapshot_prefix=str(tmp_path / "snap"), seed=SEED)
    out = io.StringIO()
    hook = make_method(config, solver, train_param, out=out)
    assert isinstance(hook, IncReg)
    before, after = _GradSpy(), _GradSpy()
    solver.hooks.extend([before, hook, after])
    for h in solver.hooks:
        h.on_start(solver)
    return solver, hook, out, before, after, [net, *test_nets]


def test_reg_col_step_state_gradient_and_log(tmp_path) -> None:
    solver, hook, out, before, after, nets = _setup(tmp_path)
    try:
        conv1 = hook.layers[0]
        assert conv1.name == "conv1" and conv1.prune_ratio > 0
        assert isinstance(conv1.reg, np.ndarray) and conv1.reg.dtype == np.float64
        conv1.reg = np.full(9, 0.1)  # every λ positive, so the groups ranked past n_p lose some
        for it in range(6):
            w = conv1.weight.detach().clone()       # the weights the step sees
            solver.step(1)
            reg = conv1.reg
            assert isinstance(reg, np.ndarray) and reg.dtype == np.float64
            assert isinstance(conv1.running_rank, np.ndarray)
            # after − before = λ⊙w, λ rounded to float32 first, one λ per column (9 columns)
            lam = torch.from_numpy(reg).float().reshape(1, 1, 3, 3)
            assert torch.equal(after.grads[-1], before.grads[-1].add_(lam * w)), it
            if it == 0:
                first_ranks = conv1.running_rank.copy()
        assert not conv1.col_pruned_host.any()          # target 0.1·M(0.2) = 0.245 not reached
    finally:
        for n in nets:
            n.close()
    # Step 1 (m = 1, so H = the L1 ranks): n_p = ceil(9·0.5) = 5, AA = 0.01, kk = 0.25:
    # α = ln 8 / 5, N1 = 10/3; Δ(5) = 0 exactly, Δ(j) = AA·(0.5 − 2^(3(j − 20/3)/5)) beyond:
    # Δ(6) = AA·(0.5 − 2^−0.4), Δ(7) = AA·(0.5 − 2^0.2), Δ(8) = AA·(0.5 − 2^0.8), so the groups
    # with the three largest ranks fall from 0.1 to 0.0974214, 0.093513, 0.087589 (%g).
    lines = [line for line in out.getvalue().splitlines() if line.startswith("reduce reg")]
    top3 = np.argsort(first_ranks, kind="stable")[-3:].tolist()   # j = 6, 7, 8
    expected = [f"reduce reg: conv1-{g}   old reg: 0.1   new reg: {new}"
                for g, new in sorted(zip(top3, ["0.0974214", "0.093513", "0.087589"]))]
    assert lines[:3] == expected
    for line in lines[3:]:                                # later steps: falls only
        parts = line.split()
        assert parts[2].startswith("conv1-") and float(parts[8]) < float(parts[5]), line


def test_clear_leftover_reg_on_host_arrays(tmp_path) -> None:
    solver, hook, out, *_, nets = _setup(tmp_path)
    try:
        conv1 = hook.layers[0]
        target = hook.target_eff
        assert abs(target - 0.1 * 2.452) < 1e-3         # target_reg · M(0.2)
        conv1.prune("Col", torch.tensor([4]))
        conv1.reg = np.array([0.0, 0.05, target, 0.125, 0.5 * target, 0.0, 2 * target, 0.01, 0.0])
        hook.clear_leftover_reg()
        # unpruned with 0 < λ < target -> 0 (groups 1, 3, 7); pruned (4), zero, and λ at or
        # above the target stay
        assert conv1.reg.tolist() == [0.0, 0.0, target, 0.0, 0.5 * target, 0.0, 2 * target,
                                      0.0, 0.0]
        assert isinstance(conv1.reg, np.ndarray) and conv1.reg.dtype == np.float64
        assert ("[app]    0 - 3 columns' left reg not cleared, now cleared: 0.05 0.125 0.01"
                in out.getvalue().splitlines())
    finally:
        for n in nets:
            n.close()


def test_reg_term_host_and_torch_paths_agree_bit_for_bit() -> None:
    # the NumPy path (CPU) and the torch path (any device) of grad += λ⊙w, on the same numbers
    gen = torch.Generator().manual_seed(3)
    for shape, view in (((50, 20, 5, 5), (1, 20, 5, 5)), ((50, 20, 5, 5), (50, 1, 1, 1)),
                        ((10, 800), (1, 800))):
        w = torch.randn(shape, generator=gen)
        grad = torch.randn(shape, generator=gen) * 1e-3
        reg = torch.rand(math.prod(view), generator=gen, dtype=torch.float64).numpy() * 0.1
        host, dev = grad.clone(), grad.clone()
        add_reg_term_host_(host, reg, w, view)
        add_reg_term_torch_(dev, reg, w, view)
        assert torch.equal(host, dev), shape
        # both are the rounded λ times w, then added
        lam = torch.from_numpy(reg).float().reshape(view)
        assert torch.equal(host, grad + lam * w)


def test_a_target_an_ulp_above_a_whole_count_still_finishes(tmp_path) -> None:
    # 5 of 9 columns pruned, stage target 5/9 + 1e-12: as ratios not reached, but no column is
    # left to prune (n_p = 0); the layer must finish rather than print BUG lines forever
    solver, hook, out, *_, nets = _setup(tmp_path)
    try:
        conv1 = hook.layers[0]
        conv1.prune("Col", torch.tensor([0, 1, 2, 3, 4]))
        conv1.current_prune_ratio = 5 / 9 + 1e-12
        assert conv1.ratio_for("Col") < conv1.current_prune_ratio
        hook._check_finished(solver)
        assert conv1.iter_prune_finished == solver.iter
        conv1.current_prune_ratio = 6 / 9           # one more to prune: not finished
        conv1.iter_prune_finished = 2147483647
        hook._check_finished(solver)
        assert conv1.iter_prune_finished == 2147483647
    finally:
        for n in nets:
            n.close()
