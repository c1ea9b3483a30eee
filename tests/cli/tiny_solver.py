"""A tiny DummyData net and its solver, written into a test's folder, for solver CLI tests.

No dataset is needed (DummyData draws batches from fillers), so a run of a few iterations takes
a second or two through the real CLI.
"""

from __future__ import annotations

from pathlib import Path

TINY_NET = """name: "Tiny"
layer {
  name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param {
    shape { dim: 8 dim: 1 dim: 12 dim: 12 }
    shape { dim: 8 }
    data_filler { type: "gaussian" std: 1 }
    data_filler { type: "uniform" min: 0 max: 9.99 }
  }
}
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 FILLER } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1"
  inner_product_param { num_output: 10 FILLER } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""

TINY_SOLVER = """base_lr: 0.01
momentum: 0.9
lr_policy: "fixed"
display: 1
max_iter: 4
snapshot_prefix: "snap/tiny"
random_seed: 1
"""


def tiny_net_text(fillers: bool = True) -> str:
    """The net; without ``fillers`` every weight starts at zero (like the fork's vgg16)."""
    return TINY_NET.replace("FILLER", 'weight_filler { type: "xavier" }' if fillers else "")


def write_tiny(folder: Path, solver_extra: str = "", net_line: str = 'net: "net.prototxt"\n',
               fillers: bool = True, solver: str = TINY_SOLVER) -> Path:
    """net.prototxt, solver.prototxt (``net_line`` + ``solver`` + ``solver_extra``) and snap/."""
    (folder / "snap").mkdir(exist_ok=True)
    (folder / "net.prototxt").write_text(tiny_net_text(fillers))
    path = folder / "solver.prototxt"
    path.write_text(net_line + solver + solver_extra)
    return path
