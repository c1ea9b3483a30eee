"""SPP_Col (structured probabilistic pruning) runs in-process on a small LeNet-like net.

* the schedule ends by itself, and every layer with ``prune_ratio`` lost at least that share of
  its columns (exact zeros);
* sampled-out groups are only off for one forward/backward: before the update the weights equal
  their pre-forward values exactly, the sampled-out columns get no gradient, and after the update
  they are not zero;
* a snapshot taken in the middle of 'prune' and resumed with a fresh solver + hook gives the
  same final weights as the uninterrupted run (the mask sampler's RNG is in the solverstate).
"""

from __future__ import annotations

import numpy as np
import torch

from prunekit import caffe
from prunekit.solver.nets import build_nets
from prunekit.prune.config import PruneConfig
from prunekit.prune.layer_state import NEVER
from prunekit.prune.registry import make_method
from prunekit.prune.increg.spp import SPP
from prunekit.solver.hooks import SolverHook
from prunekit.solver.solver import Solver

SEED = 7
PRUNED = {"conv1": 0.5, "conv2": 0.5, "ip1": 0.5}
LAYERS = ("conv1", "conv2", "ip1", "ip2")

NET = """
name: "TinyLeNet"
layer {
  name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param {
    shape { dim: 8 dim: 1 dim: 12 dim: 12 }
    shape { dim: 8 }
    data_filler { type: "gaussian" std: 1 }
    data_filler { type: "uniform" min: 0 max: 9.99 }
  }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  prune_param { prune_ratio: 0.5 }
  convolution_param { num_output: 8 kernel_size: 3 weight_filler { type: "xavier" } }
}
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer {
  name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 }
}
layer {
  name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  prune_param { prune_ratio: 0.5 }
  convolution_param { num_output: 16 kernel_size: 3 weight_filler { type: "xavier" } }
}
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer {
  name: "ip1" type: "InnerProduct" bottom: "conv2" top: "ip1"
  prune_param { prune_ratio: 0.5 }
  inner_product_param { num_output: 32 weight_filler { type: "xavier" } }
}
layer { name: "relu3" type: "ReLU" bottom: "ip1" top: "ip1" }
layer {
  name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } }
}
layer {
  name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy"
  include { phase: TEST }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""

SOLVER = """
net: "{net}"
test_iter: 1
test_interval: 1000000
test_initialization: false
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 0
max_iter: 2000
snapshot_prefix: "{prefix}"
random_seed: {seed}
solver_mode: CPU
prune_method: "SPP_Col"
AA: 0.05
acc_borderline: -1
losseval_interval: 5
retrain_test_interval: 2
cnt_after_max_acc: 0
max_cnt_lr_decay: 0
"""


def _setup(directory, hooks_before=(), hooks_after=()):
    directory.mkdir(parents=True, exist_ok=True)
    net_path = directory / "train_val.prototxt"
    net_path.write_text(NET)
    solver_path = directory / "solver.prototxt"
    prefix = str(directory / "snap")
    solver_path.write_text(SOLVER.format(net=net_path, prefix=prefix, seed=SEED))
    param = caffe.read_solver_prototxt(str(solver_path))
    torch.manual_seed(SEED)
    config = PruneConfig.from_solver(param, str(solver_path))
    net, test_nets, train_param = build_nets(param, str(solver_path), torch.device("cpu"), SEED)
    solver = Solver(param, net, test_nets, snapshot_prefix=prefix, seed=SEED)
    hook = make_method(config, solver, train_param)
    assert isinstance(hook, SPP)
    solver.hooks.extend([*hooks_before, hook, *hooks_after])
    return solver, hook, [net, *test_nets]


def _weights(solver) -> dict[str, torch.Tensor]:
    return {name: solver.net.layer(name).weight.detach().clone() for name in LAYERS}


def _zero_cols(w: torch.Tensor) -> torch.Tensor:
    return (w.reshape(w.shape[0], -1) == 0).all(0)


class _Spy:
    """Checks the sampled masks around every 'prune' iteration (hooks before/after SPP's)."""

    def __init__(self) -> None:
        self.hook: SPP | None = None
        self.pre: dict[int, torch.Tensor] = {}
        self.out: dict[int, torch.Tensor] = {}   # bool [num_cols]: sampled out, not pruned
        self.checked = 0
        self.sampled_out = 0
        self.survived = 0

    def before(self) -> SolverHook:
        spy = self

        class Before(SolverHook):
            def before_update(self, solver) -> None:
                # weights restored: exactly the pre-forward values (the update comes later)
                for index, saved in spy.pre.items():
                    layer = spy.hook.layers[index]
                    assert torch.equal(layer.weight.detach(), saved), layer.name
                    spy.checked += 1

        return Before()

    def after(self) -> SolverHook:
        spy = self

        class After(SolverHook):
            def before_forward(self, solver) -> None:
                spy.pre, spy.out = {}, {}
                for layer in spy.hook.layers:
                    if layer.index not in spy.hook._backup:
                        continue
                    saved = spy.hook._backup[layer.index]
                    spy.pre[layer.index] = saved.clone()
                    off = _zero_cols(layer.weight.detach()) & ~_zero_cols(saved) & ~layer.col_pruned
                    spy.out[layer.index] = off

            def after_backward(self, solver) -> None:
                for index, off in spy.out.items():
                    layer = spy.hook.layers[index]
                    if bool(off.any()):
                        grad = layer.weight.grad.reshape(layer.weight.shape[0], -1)
                        assert (grad[:, off] == 0).all(), layer.name

            def after_update(self, solver) -> None:
                for index, off in spy.out.items():
                    layer = spy.hook.layers[index]
                    off = off & ~layer.col_pruned  # not pruned in this iteration's update either
                    spy.sampled_out += int(off.sum())
                    cols = layer.weight.detach().reshape(layer.weight.shape[0], -1)[:, off]
                    spy.survived += int((cols != 0).any(0).sum())
                spy.out = {}

        return After()


def _run_full(directory):
    spy = _Spy()
    solver, hook, nets = _setup(directory, [spy.before()], [spy.after()])
    spy.hook = hook
    try:
        solver.solve()
    finally:
        for n in nets:
            n.close()
    return solver, hook, spy


def test_spp_col_prunes_samples_and_resumes(tmp_path) -> None:
    solver, hook, spy = _run_full(tmp_path / "full")
    assert solver.finished, "the SPP schedule did not end the run"
    assert solver.iter < solver.param.max_iter
    final = _weights(solver)
    for name, ratio in PRUNED.items():
        cols = _zero_cols(final[name])
        assert cols.float().mean() >= ratio, (name, cols.float().mean())
    assert not _zero_cols(final["ip2"]).any()
    for layer in hook.layers:  # p = 0 exactly on the pruned groups
        if layer.prune_ratio > 0:
            assert isinstance(layer.reg, np.ndarray) and layer.reg.dtype == np.float64
            assert np.array_equal(layer.reg == 0, layer.col_pruned.numpy()), layer.name
    # sampling really happened, and did not zero anything for good
    assert spy.checked > 0
    assert spy.sampled_out > 0, "no group was ever sampled out: the test proves nothing"
    assert spy.survived == spy.sampled_out

    # the same run, interrupted in the middle of 'prune' and resumed with a fresh solver + hook
    part, part_hook, nets = _setup(tmp_path / "resume")
    try:
        for h in part.hooks:
            h.on_start(part)
        part.step(25)
        assert part_hook.schedule.state == "prune"
        assert any(l.has_pruned for l in part_hook.layers), "nothing pruned yet at the snapshot"
        assert not all(l.iter_prune_finished != NEVER for l in part_hook.layers)
        _, state_path = part.snapshot()
    finally:
        for n in nets:
            n.close()
    resumed, resumed_hook, nets = _setup(tmp_path / "resume")
    try:
        resumed.restore(state_path)
        assert resumed.iter == 25
        resumed.solve()
    finally:
        for n in nets:
            n.close()
    assert resumed.finished
    assert resumed.iter == solver.iter
    for name, w in _weights(resumed).items():
        assert torch.equal(w, final[name]), name
