"""A tiny real LeNet-like net and solver for the method-zoo tests (tests/prune/test_*zoo*)."""

from __future__ import annotations

from pathlib import Path

import torch

from prunekit import caffe
from prunekit.solver.nets import build_nets
from prunekit.prune.config import PruneConfig
from prunekit.prune.registry import make_method
from prunekit.solver.solver import Solver

SEED = 5

NET = """
name: "TinyLeNet"
layer {{
  name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param {{
    shape {{ dim: 8 dim: 1 dim: 12 dim: 12 }}
    shape {{ dim: 8 }}
    data_filler {{ type: "gaussian" std: 1 }}
    data_filler {{ type: "uniform" min: 0 max: 9.99 }}
  }}
}}
layer {{
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1" {conv1}
  convolution_param {{ num_output: 8 kernel_size: 3 weight_filler {{ type: "xavier" }} }}
}}
layer {{ name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }}
layer {{
  name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2" {conv2}
  convolution_param {{ num_output: 12 kernel_size: 5 weight_filler {{ type: "xavier" }} }}
}}
layer {{ name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }}
layer {{
  name: "ip1" type: "InnerProduct" bottom: "conv2" top: "ip1" {ip1}
  inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }}
}}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }}
"""

SOLVER = """
net: "{net}"
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "fixed"
display: 0
max_iter: {max_iter}
snapshot: 0
snapshot_after_train: false
snapshot_prefix: "{prefix}"
random_seed: {seed}
solver_mode: CPU
prune_method: "{method}"
{extra}
"""


def make_solver(directory: Path, method: str, ratios: dict[str, float], extra: str = "",
                max_iter: int = 20, net: str = NET):
    """(solver, hook) for ``method`` on the tiny net with ``prune_ratio`` per layer."""
    directory.mkdir(parents=True, exist_ok=True)
    pp = {name: f"prune_param {{ prune_ratio: {ratios[name]} }}" if name in ratios else ""
          for name in ("conv1", "conv2", "ip1")}
    net_path = directory / "train_val.prototxt"
    net_path.write_text(net.format(**pp))
    solver_path = directory / "solver.prototxt"
    prefix = str(directory / "snap")
    solver_path.write_text(SOLVER.format(net=net_path, prefix=prefix, seed=SEED, method=method,
                                         extra=extra, max_iter=max_iter))
    param = caffe.read_solver_prototxt(str(solver_path))
    torch.manual_seed(SEED)
    config = PruneConfig.from_solver(param, str(solver_path))
    train_net, test_nets, train_param = build_nets(param, str(solver_path), torch.device("cpu"), SEED)
    solver = Solver(param, train_net, test_nets, snapshot_prefix=prefix, seed=SEED)
    hook = make_method(config, solver, train_param)
    solver.hooks.append(hook)
    return solver, hook


def weight(solver, name: str) -> torch.Tensor:
    return solver.net.layer(name).weight.detach().clone()
