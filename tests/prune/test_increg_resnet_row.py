"""Reg_Row on a ResNet-style net prunes filters through Eltwise-coupled blocks without shape
errors; Reg_Col on the same net too.

A tiny two-block ResNet (conv1 → BN/Scale/ReLU → res2a with a branch1 projection → res2b with
an identity shortcut → global average pooling → fc10) trains in-process on DummyData until the
IncReg schedule ends by itself (prune → losseval → retrain → task done). The checks read only
the final weights: every conv with ``prune_ratio: 0.5`` lost at least half of its rows (Row) or
columns (Col), and pruning crossed each Eltwise the way the channel graph says it must:

* Row: a consumer of an Eltwise output loses the columns of channel c exactly where *every*
  producer coupled by that Eltwise (the branch2c convs and the branch1 projection) pruned row c,
  never where only some did;
* Col (fc10 prunes columns too): the coupled producers' row c goes only all together, exactly
  where every consumer of the coupled blobs dropped all columns of channel c.

Both runs take a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import re

import torch

from prunekit import caffe
from prunekit.solver.nets import build_nets
from prunekit.prune.config import PruneConfig
from prunekit.prune.registry import make_method
from prunekit.solver.solver import Solver

BATCH, CHANNELS, SIDE = 8, 3, 16
SEED = 5
CONVS = ("conv1", "res2a_branch1", "res2a_branch2a", "res2a_branch2b", "res2a_branch2c",
         "res2b_branch2a", "res2b_branch2b", "res2b_branch2c")

DATA = f"""
name: "TinyResNet"
layer {{
  name: "data" type: "DummyData" top: "data" top: "label"
  dummy_data_param {{
    shape {{ dim: {BATCH} dim: {CHANNELS} dim: {SIDE} dim: {SIDE} }}
    shape {{ dim: {BATCH} }}
    data_filler {{ type: "gaussian" std: 1 }}
    data_filler {{ type: "uniform" min: 0 max: 9.99 }}
  }}
}}
"""


def _conv(name: str, bottom: str, out: int, kernel: int, stride: int = 1) -> str:
    pad = kernel // 2
    return f"""
layer {{
  name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"
  prune_param {{ prune_ratio: 0.5 }}
  convolution_param {{
    num_output: {out} kernel_size: {kernel} pad: {pad} stride: {stride} bias_term: false
    weight_filler {{ type: "msra" }}
  }}
}}"""


def _bn_scale(conv: str, top: str, relu: bool) -> str:
    """BatchNorm (stored statistics) + Scale (with bias) after ``conv``, in place on its top."""
    suffix = conv[3:] if conv.startswith("res") else "_" + conv
    text = f"""
layer {{
  name: "bn{suffix}" type: "BatchNorm" bottom: "{top}" top: "{top}"
  batch_norm_param {{ use_global_stats: true }}
}}
layer {{
  name: "scale{suffix}" type: "Scale" bottom: "{top}" top: "{top}"
  scale_param {{ bias_term: true }}
}}"""
    if relu:
        text += f"""
layer {{ name: "{conv}_relu" type: "ReLU" bottom: "{top}" top: "{top}" }}"""
    return text


def _conv_bn(name: str, bottom: str, out: int, kernel: int, relu: bool, stride: int = 1) -> str:
    return _conv(name, bottom, out, kernel, stride) + _bn_scale(name, name, relu)


def _block(name: str, bottom: str, width: int, inner: int, projection: bool) -> str:
    b = f"res{name}"
    text = ""
    shortcut = bottom
    if projection:
        text += _conv_bn(f"{b}_branch1", bottom, width, 1, relu=False)
        shortcut = f"{b}_branch1"
    text += _conv_bn(f"{b}_branch2a", bottom, inner, 1, relu=True)
    text += _conv_bn(f"{b}_branch2b", f"{b}_branch2a", inner, 3, relu=True)
    text += _conv_bn(f"{b}_branch2c", f"{b}_branch2b", width, 1, relu=False)
    text += f"""
layer {{
  name: "{b}" type: "Eltwise" bottom: "{shortcut}" bottom: "{b}_branch2c" top: "{b}"
  eltwise_param {{ operation: SUM }}
}}
layer {{ name: "{b}_relu" type: "ReLU" bottom: "{b}" top: "{b}" }}"""
    return text


def _net(fc_prune_ratio: float = 0.0) -> str:
    fc_prune = f"prune_param {{ prune_ratio: {fc_prune_ratio} }}" if fc_prune_ratio else ""
    return (DATA + _conv_bn("conv1", "data", 16, 3, relu=True, stride=2)
            + _block("2a", "conv1", 16, 8, projection=True)
            + _block("2b", "res2a", 16, 8, projection=False) + f"""
layer {{
  name: "pool5" type: "Pooling" bottom: "res2b" top: "pool5"
  pooling_param {{ pool: AVE global_pooling: true }}
}}
layer {{
  name: "fc10" type: "InnerProduct" bottom: "pool5" top: "fc10" {fc_prune}
  inner_product_param {{ num_output: 10 weight_filler {{ type: "xavier" }} }}
}}
layer {{
  name: "accuracy" type: "Accuracy" bottom: "fc10" bottom: "label" top: "accuracy"
  include {{ phase: TEST }}
}}
layer {{ name: "loss" type: "SoftmaxWithLoss" bottom: "fc10" bottom: "label" top: "loss" }}
""")


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
max_iter: 3000
snapshot_prefix: "{prefix}"
random_seed: {seed}
solver_mode: CPU
prune_method: "{method}"
AA: 0.01
target_reg: 0.1
acc_borderline: -1
losseval_interval: 5
retrain_test_interval: 2
cnt_after_max_acc: 0
max_cnt_lr_decay: 0
"""

#: What the Eltwise layers couple: producers of the summed channels and consumers of the sum.
#: res2a = branch1 + branch2c; res2b = relu(res2a) + res2b_branch2c, so res2b's channel c is
#: dead only when all three producers pruned row c. fc10 reads res2b through global pooling
#: (one column per channel), res2b_branch2a reads relu(res2a).
ELTWISE = {
    "res2a": (("res2a_branch1", "res2a_branch2c"), ("res2b_branch2a",)),
    "res2b": (("res2a_branch1", "res2a_branch2c", "res2b_branch2c"), ("fc10",)),
}
#: Plain producer → consumer edges (through BN/Scale/ReLU only).
PLAIN = {"conv1": ("res2a_branch1", "res2a_branch2a"),
         "res2a_branch2a": ("res2a_branch2b",), "res2a_branch2b": ("res2a_branch2c",),
         "res2b_branch2a": ("res2b_branch2b",), "res2b_branch2b": ("res2b_branch2c",)}

APP_COURSE = ("Training starts", "Current pruning stage (stage = 1) finished", "'losseval' done",
              "'retrain' going on", "All 'retrain' done", "accuracy **still good**",
              "All layer prune finished", "resuming from", "'Given pr to get acc' task done!")


def _run(tmp_path, capsys, method: str, fc_prune_ratio: float = 0.0, extra: str = ""):
    """Train the tiny ResNet with ``method`` until the schedule stops; (final weights, stdout)."""
    net_path = tmp_path / "train_val.prototxt"
    net_path.write_text(_net(fc_prune_ratio))
    solver_path = tmp_path / "solver.prototxt"
    prefix = str(tmp_path / "snap")
    solver_path.write_text(SOLVER.format(net=net_path, prefix=prefix, seed=SEED, method=method)
                           + extra)
    param = caffe.read_solver_prototxt(str(solver_path))
    torch.manual_seed(SEED)
    config = PruneConfig.from_solver(param, str(solver_path))
    net, test_nets, train_param = build_nets(param, str(solver_path), torch.device("cpu"), SEED)
    with torch.no_grad():  # stored statistics mean 0, variance 1 (the TEST net shares them)
        for entry, module in net.named_layers():
            if entry.type == "BatchNorm":
                module.variance.fill_(1.0)
                module.moving_average_factor.fill_(1.0)
    solver = Solver(param, net, test_nets, snapshot_prefix=prefix, seed=SEED)
    solver.hooks.append(make_method(config, solver, train_param))
    try:
        solver.solve()
    finally:
        for n in [net, *test_nets]:
            n.close()
    assert solver.finished, "the pruning schedule did not end the run"
    assert solver.iter < param.max_iter
    weights = {name: net.layer(name).weight.detach().clone() for name in (*CONVS, "fc10")}
    return weights, capsys.readouterr().out


def _zero_rows(w: torch.Tensor) -> torch.Tensor:
    return (w.reshape(w.shape[0], -1) == 0).all(1)


def _zero_channels(w: torch.Tensor) -> torch.Tensor:
    """bool [C]: every column of input channel c is zero (conv: all kh·kw positions)."""
    if w.dim() == 2:  # fc10 after global pooling: one column per channel
        return (w == 0).all(0)
    return (w == 0).all(0).flatten(1).all(1)


def _assert_course(out: str) -> None:
    course = [line for line in out.splitlines() if "[app]" in line]
    positions = []
    for needle in APP_COURSE:
        hits = [i for i, line in enumerate(course) if needle in line]
        assert hits, f"no [app] line with {needle!r} in:\n" + "\n".join(course)
        positions.append(hits[0])
    assert positions == sorted(positions), "\n".join(course)
    stage = next(line for line in course if "pruning stage (stage = 1) finished" in line)
    assert int(re.search(r"iter: (\d+)", stage).group(1)) <= 400, stage


def test_reg_row_prunes_filters_through_eltwise(tmp_path, capsys) -> None:
    weights, out = _run(tmp_path, capsys, "Reg_Row")
    _assert_course(out)
    for name in CONVS:
        rows = _zero_rows(weights[name])
        assert rows.float().mean() >= 0.5, (name, rows.tolist())

    partial = 0
    for eltwise, (producers, consumers) in ELTWISE.items():
        dead = torch.stack([_zero_rows(weights[p]) for p in producers]).all(0)
        some = torch.stack([_zero_rows(weights[p]) for p in producers]).any(0)
        partial += int((some & ~dead).sum())
        for consumer in consumers:
            cut = _zero_channels(weights[consumer])
            # a channel is dropped downstream only where all coupled producers pruned the row ...
            assert not (cut & ~dead).any(), (eltwise, consumer, cut.tolist(), dead.tolist())
            # ... and wherever they all did (the propagation is complete)
            assert torch.equal(cut, dead), (eltwise, consumer, cut.tolist(), dead.tolist())
    assert partial > 0, "no row pruned by only some coupled producers: the test proves nothing"
    for producer, consumers in PLAIN.items():
        for consumer in consumers:
            assert torch.equal(_zero_channels(weights[consumer]), _zero_rows(weights[producer])), \
                (producer, consumer)


def test_reg_col_prunes_columns_through_eltwise(tmp_path, capsys) -> None:
    # fc10 prunes columns too, so that channels of the identity path can become unread
    weights, out = _run(tmp_path, capsys, "Reg_Col", fc_prune_ratio=0.5)
    _assert_course(out)
    for name in (*CONVS, "fc10"):
        w = weights[name]
        cols = (w.reshape(w.shape[0], -1) == 0).all(0)
        assert cols.float().mean() >= 0.5, (name, cols.float().mean())

    # the identity path res2a/res2b couples branch1, res2a_branch2c and res2b_branch2c: their row
    # c goes together, and exactly where every consumer of the coupled blobs dropped channel c
    producers, _ = ELTWISE["res2b"]
    consumers = ELTWISE["res2a"][1] + ELTWISE["res2b"][1]
    rows = torch.stack([_zero_rows(weights[p]) for p in producers])
    assert (rows.all(0) == rows.any(0)).all(), rows.tolist()
    unread = torch.stack([_zero_channels(weights[c]) for c in consumers]).all(0)
    assert torch.equal(rows.any(0), unread), (rows.tolist(), unread.tolist())
    assert unread.any(), "no channel of the identity path became unread: the test proves nothing"
    partly = torch.stack([_zero_channels(weights[c]) for c in consumers]).any(0) & ~unread
    assert partly.any(), "no channel dropped by one consumer only: the test proves nothing"
    # plain edges: a producer filter goes exactly when its consumers dropped the channel
    for producer, consumers in PLAIN.items():
        unread = torch.stack([_zero_channels(weights[c]) for c in consumers]).all(0)
        assert torch.equal(_zero_rows(weights[producer]), unread), producer


def test_per_layer_summary_only_when_verbose(tmp_path, capsys) -> None:
    """The fork's per-iteration per-layer line is noise by default: prune_log_verbose shows it."""
    (tmp_path / "quiet").mkdir()
    (tmp_path / "loud").mkdir()
    _, quiet = _run(tmp_path / "quiet", capsys, "Reg_Row")
    _, loud = _run(tmp_path / "loud", capsys, "Reg_Row", extra="prune_log_verbose: true\n")
    summary = re.compile(r"^res2a_branch2b  IF_prune: 1  pruned_ratio_row: [\d.e-]+\(\d+\)  "
                         r"current_prune_ratio: 0\.5  iter_prune_finished: \d+  \(prune-", re.M)
    assert not summary.search(quiet)
    assert len(summary.findall(loud)) > 10
