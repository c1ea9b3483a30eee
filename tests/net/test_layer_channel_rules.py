"""A layer type is one file that declares its channel rule, and both users of the channel model
follow it with no other edit: training-time Reg_Row propagation (an in-solver IncReg run) and
`prunekit compact` (the real CLI, in a subprocess). A layer type without a rule pins its channels
and the compact report names it. Depthwise convs and squeeze-excitation Scales: the rules the
imported nets need.

The new layer types live in tests/net/channel_power_layer.py and are registered only here.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from prunekit import caffe
from prunekit.compact import build_compacted, compact
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.registry import LAYER_TYPES
from prunekit.net.weights import save_caffemodel
from prunekit.prune.dependency import ChannelGraph

HERE = Path(__file__).resolve().parent
NEW_TYPES = {"ChannelPower": "channel_power_layer:ChannelPower",
             "NoRule": "channel_power_layer:NoRule"}

#: Runs the real CLI with the test layer types registered (one line each, as in
#: prunekit/net/registry.py), nothing else changed.
RUNNER = """
import sys
from prunekit.net.registry import LAYER_TYPES
LAYER_TYPES.update({types!r})
from prunekit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def new_types(monkeypatch):
    for name, target in NEW_TYPES.items():
        monkeypatch.setitem(LAYER_TYPES, name, target)


def _deploy(middle: str) -> str:
    """data (1×3×8×8) → conv1 (8 filters) → ``middle`` layer → conv2 (6, 3×3, bias) → ip (4)."""
    return f"""
name: "rule_net" input: "data" input_shape {{ dim: 1 dim: 3 dim: 8 dim: 8 }}
layer {{ name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param {{ num_output: 8 kernel_size: 3 pad: 1 }} }}
layer {{ name: "mid" type: "{middle}" bottom: "conv1" top: "mid"
  power_param {{ power: 2 scale: 0.5 shift: 1 }} }}
layer {{ name: "conv2" type: "Convolution" bottom: "mid" top: "conv2"
  convolution_param {{ num_output: 6 kernel_size: 3 }} }}
layer {{ name: "ip" type: "InnerProduct" bottom: "conv2" top: "ip"
  inner_product_param {{ num_output: 4 }} }}
"""


def _masked_model(tmp_path: Path, middle: str) -> None:
    """m.prototxt + m.caffemodel: random weights and biases, conv1 filters 1, 4, 6 zeroed."""
    text = _deploy(middle)
    (tmp_path / "m.prototxt").write_text(text)
    net = Net(caffe.parse_net_text(text), TEST)
    torch.manual_seed(3)
    with torch.no_grad():
        for name in ("conv1", "conv2", "ip"):
            net.layer(name).weight.normal_()
            net.layer(name).bias.normal_(0, 0.5)
        net.layer("conv1").weight[[1, 4, 6]] = 0
    save_caffemodel(net, tmp_path / "m.caffemodel")
    net.close()


def _compact_report(tmp_path: Path, middle: str) -> str:
    """`prunekit compact` of the masked model with ``middle`` between the convs: its stdout."""
    _masked_model(tmp_path, middle)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))
    args = ["compact", "--model", "m.prototxt", "--weights", "m.caffemodel",
            "--out-model", "s.prototxt", "--out-weights", "s.caffemodel"]
    proc = subprocess.run([sys.executable, "-c", RUNNER.format(types=NEW_TYPES), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_compact_follows_a_new_layer_types_rule(tmp_path: Path, new_types) -> None:
    out = _compact_report(tmp_path, "ChannelPower")
    # the zeroed filters' constants (1 + 0.5·b)² cross ChannelPower into conv2's bias
    assert re.search(r"^conv1 +Convolution +8x3x3x3 -> 5x3x3x3", out, re.M), out
    assert re.search(r"^conv2 +Convolution +6x8x3x3 -> 6x5x3x3", out, re.M), out
    check = re.search(r"relative ([0-9.e+-]+)\)", out)
    assert check and float(check.group(1)) <= 1e-4, out


def test_a_layer_type_without_rule_pins_and_the_report_says_why(tmp_path: Path, new_types) -> None:
    out = _compact_report(tmp_path, "NoRule")
    assert re.search(r"^conv1 +Convolution +8x3x3x3 -> 8x3x3x3", out, re.M), out
    assert ("3 constant filter(s) kept: read by 'mid' (NoRule): layer type 'NoRule' declares "
            "no channel rule") in out, out


def test_graph_follows_the_rule_and_pins_without_one(new_types) -> None:
    power = Net(caffe.parse_net_text(_deploy("ChannelPower")), TEST)
    [hit] = ChannelGraph(power).consumer_columns_of_pruned_rows("conv1", [2])
    assert hit.layer == "conv2" and hit.columns.tolist() == list(range(18, 27))
    opaque = ChannelGraph(Net(caffe.parse_net_text(_deploy("NoRule")), TEST))
    assert opaque.consumer_columns_of_pruned_rows("conv1", [2]) == []
    assert not opaque.removable_rows("conv1").any()


# ---------------------------------------------------------------- Reg_Row, in the solver
SOLVER = """
net: "{net}" snapshot_prefix: "{prefix}" random_seed: 5 solver_mode: CPU
test_iter: 1 test_interval: 1000000 test_initialization: false display: 0 max_iter: 70
base_lr: 0.01 momentum: 0.9 weight_decay: 0.0005 lr_policy: "fixed"
prune_method: "Reg_Row" AA: 0.01 target_reg: 0.1 acc_borderline: -1
losseval_interval: 5 retrain_test_interval: 2 cnt_after_max_acc: 0 max_cnt_lr_decay: 0
"""

TRAIN_NET = """
name: "power_train"
layer { name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param { shape { dim: 4 dim: 3 dim: 8 dim: 8 } shape { dim: 4 }
    data_filler { type: "gaussian" std: 1 } data_filler { type: "uniform" min: 0 max: 3.99 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  prune_param { prune_ratio: 0.5 }
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "pw" type: "ChannelPower" bottom: "conv1" top: "pw"
  power_param { power: 1 scale: 2 shift: 0.1 } }
layer { name: "relu" type: "ReLU" bottom: "pw" top: "pw" }
layer { name: "dw" type: "Convolution" bottom: "pw" top: "dw"
  convolution_param { num_output: 8 group: 8 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "conv2" type: "Convolution" bottom: "dw" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "pool" type: "Pooling" bottom: "conv2" top: "pool"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy"
  include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
"""


def test_reg_row_propagates_through_a_new_layer_type(tmp_path, new_types) -> None:
    """70 iterations of in-solver Reg_Row on conv1 (about 20 s on a shared 2-core CPU); a
    depthwise conv after the new layer shows the filters that die with a pruned channel."""
    from prunekit.solver.nets import build_nets
    from prunekit.prune.config import PruneConfig
    from prunekit.prune.registry import make_method
    from prunekit.solver.solver import Solver

    (tmp_path / "net.prototxt").write_text(TRAIN_NET)
    solver_path = tmp_path / "solver.prototxt"
    prefix = str(tmp_path / "snap")
    solver_path.write_text(SOLVER.format(net=tmp_path / "net.prototxt", prefix=prefix))
    param = caffe.read_solver_prototxt(str(solver_path))
    torch.manual_seed(5)
    config = PruneConfig.from_solver(param, str(solver_path))
    net, test_nets, train_param = build_nets(param, str(solver_path), torch.device("cpu"), 5)
    solver = Solver(param, net, test_nets, snapshot_prefix=prefix, seed=5)
    solver.hooks.append(make_method(config, solver, train_param))
    try:
        solver.solve()
    finally:
        for n in [net, *test_nets]:
            n.close()
    # conv1's pruning stage ends near iteration 60 (its filters are then half zero)
    rows = (net.layer("conv1").weight.detach().flatten(1) == 0).all(1)
    dw = (net.layer("dw").weight.detach().flatten(1) == 0).all(1)
    cut = (net.layer("conv2").weight.detach() == 0).all(0).flatten(1).all(1)
    assert rows.float().mean() >= 0.5, rows.tolist()
    # through ChannelPower, the depthwise filter of each pruned channel died with it, and conv2
    # lost exactly the input channels those filters made
    assert torch.equal(dw, rows), (dw.tolist(), rows.tolist())
    assert torch.equal(cut, rows), (cut.tolist(), rows.tolist())


# ---------------------------------------------------------------- depthwise and SE
MOBILE = """
name: "mobile" input: "data" input_shape { dim: 1 dim: 3 dim: 6 dim: 6 }
layer { name: "expand" type: "Convolution" bottom: "data" top: "expand"
  convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "expand" top: "expand" }
layer { name: "dw" type: "Convolution" bottom: "expand" top: "dw"
  convolution_param { num_output: 12 group: 6 kernel_size: 3 pad: 1 } }
layer { name: "relu2" type: "ReLU" bottom: "dw" top: "dw" }
layer { name: "project" type: "Convolution" bottom: "dw" top: "project"
  convolution_param { num_output: 4 kernel_size: 1 } }
"""


def test_depthwise_filters_die_with_their_input_channel() -> None:
    graph = ChannelGraph(Net(caffe.parse_net_text(MOBILE), TEST))
    # channel multiplier 2: expand's channel 4 feeds dw filters 8 and 9
    [dying] = graph.rows_dying_with("expand", [4])
    assert dying.layer == "dw" and dying.rows.tolist() == [8, 9]
    hits = {h.layer: h for h in graph.consumer_columns_of_pruned_rows("expand", [4])}
    assert hits["dw"].groups.tolist() == [4] * 9            # all of dw's group 4
    assert hits["project"].columns.tolist() == [8, 9]        # and what the dead filters made
    # once dw's filters are pruned already, nothing new dies
    assert graph.rows_dying_with("expand", [4], {"dw": [8, 9]}) == []


def _assert_same_outputs(net: Net, small: Net, shape: tuple[int, ...], blob: str) -> None:
    """The masked and the compacted net agree on ``blob`` within 1e-4 of its scale."""
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = net({"data": x})[1][blob], small({"data": x})[1][blob]
    assert math.isfinite(float(a.abs().max())) and float(a.abs().max()) > 0
    assert float((a - b).abs().max()) <= 1e-4 * float(a.abs().max())


def test_depthwise_group_compacts_with_its_channel() -> None:
    param = caffe.parse_net_text(MOBILE)
    net = Net(param, TEST)
    torch.manual_seed(0)
    with torch.no_grad():
        for name in ("expand", "dw", "project"):
            net.layer(name).weight.normal_()
            net.layer(name).bias.normal_(0, 0.5)
        net.layer("expand").weight[[1, 4]] = 0        # what Reg_Row prunes ...
        net.layer("dw").weight[[2, 3, 8, 9]] = 0      # ... and what dies with it
    result = compact(param, net)
    small = build_compacted(result, TEST)
    assert tuple(small.layer("dw").weight.shape) == (8, 1, 3, 3)
    assert small.layer("dw").group == 4 and tuple(small.layer("project").weight.shape) == (4, 8, 1, 1)
    _assert_same_outputs(net, small, (1, 3, 6, 6), "project")


SE = """
name: "se" input: "data" input_shape { dim: 2 dim: 3 dim: 6 dim: 6 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc1" type: "InnerProduct" bottom: "pool" top: "fc1"
  inner_product_param { num_output: 3 } }
layer { name: "relu" type: "ReLU" bottom: "fc1" top: "fc1" }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2"
  inner_product_param { num_output: 6 } }
layer { name: "gate" type: "Sigmoid" bottom: "fc2" top: "fc2" }
layer { name: "excite" type: "Scale" bottom: "conv" bottom: "fc2" top: "excite"
  scale_param { axis: 0 } }
layer { name: "head" type: "Convolution" bottom: "excite" top: "head"
  convolution_param { num_output: 4 kernel_size: 1 } }
"""


def test_squeeze_excitation_ties_both_bottoms() -> None:
    param = caffe.parse_net_text(SE)
    net = Net(param, TEST)
    graph = ChannelGraph(net)
    assert graph.coupled_producers("conv") == ["conv", "fc2"]
    assert graph.removable_rows("conv").all()
    torch.manual_seed(1)
    with torch.no_grad():
        for name in ("conv", "fc1", "fc2", "head"):
            net.layer(name).weight.normal_()
            net.layer(name).bias.normal_(0, 0.5)
        net.layer("conv").weight[[0, 5]] = 0
        net.layer("fc2").weight[[0, 5]] = 0
    small = build_compacted(compact(param, net), TEST)
    for name, shape in {"conv": (4, 3, 3, 3), "fc1": (3, 4), "fc2": (4, 3),
                        "head": (4, 4, 1, 1)}.items():
        assert tuple(small.layer(name).weight.shape) == shape, name
    _assert_same_outputs(net, small, (2, 3, 6, 6), "head")
