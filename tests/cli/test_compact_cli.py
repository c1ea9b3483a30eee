"""`prunekit compact` through the real CLI: LeNet-5's train_val.prototxt (LMDB data layers in both
phases) masked, compacted, and scored by `prunekit test` with the same result; clear errors."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import torch

from cli_helpers import LENET_DIR, run_cli
from prunekit import caffe
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import save_caffemodel

SCORE = re.compile(r"test\.py:\d+\] (Loss: .*|accuracy = .*)$", re.M)


def _masked_lenet(workdir: Path) -> None:
    """train_val.prototxt and a masked.caffemodel (random weights, half of conv2's filters and
    a third of ip1's rows zeroed; their non-zero biases stay behind as constants)."""
    shutil.copy(LENET_DIR / "train_val.prototxt", workdir / "train_val.prototxt")
    torch.manual_seed(0)
    with contextlib.chdir(workdir):  # the Data layers' LMDB paths are relative to workdir
        net = Net(caffe.read_net_prototxt(workdir / "train_val.prototxt"), TEST)
    try:
        with torch.no_grad():
            for name in ("conv1", "conv2", "ip1", "ip2"):
                net.layer(name).bias.normal_(0, 0.1)
            net.layer("conv1").weight[[2, 7, 11]] = 0
            net.layer("conv2").weight[::2] = 0
            net.layer("ip1").weight[::3] = 0
        save_caffemodel(net, workdir / "masked.caffemodel")
    finally:
        net.close()


def test_compact_lenet5_train_val_then_score_it(workdir: Path) -> None:
    _masked_lenet(workdir)
    proc = run_cli(["compact", "--model", "train_val.prototxt", "--weights", "masked.caffemodel",
                    "--out-model", "small.prototxt", "--out-weights", "small.caffemodel",
                    "--round-to", "4"], workdir, check=True)
    out = proc.stdout
    assert re.search(r"^conv1 +Convolution +20x1x5x5 -> 20x1x5x5", out, re.M)   # 17 + 3 kept
    assert "3 constant filter(s) kept: --round-to 4" in out
    assert re.search(r"^conv2 +Convolution +50x20x5x5 -> 28x20x5x5", out, re.M)
    assert re.search(r"^ip1 +InnerProduct +500x800 -> 336x448", out, re.M)
    assert re.search(r"^ip2 +InnerProduct +10x500 -> 10x336", out, re.M)
    assert "realised speedup" in out and "theoretical speedup" in out
    check = re.search(r"relative ([0-9.e+-]+)\)", out)
    assert check and float(check.group(1)) <= 1e-4
    assert "Traceback" not in proc.stderr
    # the prototxt keeps both data layers, prune_param and the rest; only num_output changed
    original = caffe.read_net_prototxt(workdir / "train_val.prototxt")
    small = caffe.read_net_prototxt(workdir / "small.prototxt")
    assert [lp.name for lp in small.layer] == [lp.name for lp in original.layer]
    assert small.layer[0] == original.layer[0] and small.layer[1] == original.layer[1]
    assert [lp.convolution_param.num_output for lp in small.layer[2:5:2]] == [20, 28]
    assert small.layer[2].prune_param == original.layer[2].prune_param
    # `prunekit test` scores the compacted model exactly like the masked one
    scores = []
    for model, weights in (("train_val.prototxt", "masked.caffemodel"),
                           ("small.prototxt", "small.caffemodel")):
        scored = run_cli(["test", "--model", model, "--weights", weights, "--iterations", "3"],
                         workdir, check=True)
        scores.append(SCORE.findall(scored.stderr))
    assert scores[0] == scores[1] and len(scores[0]) == 2


LENET_IN = """
name: "lenet_in" input: "data" input_shape { dim: 1 dim: 1 dim: 28 dim: 28 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 6 kernel_size: 5 pad: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 4 kernel_size: 5 } }
"""


def test_compact_kernel_and_user_errors(tmp_path: Path) -> None:
    (tmp_path / "m.prototxt").write_text(LENET_IN)
    net = Net(caffe.parse_net_text(LENET_IN), TEST)
    torch.manual_seed(1)
    with torch.no_grad():
        for name in ("conv1", "conv2"):
            net.layer(name).weight.normal_()
        net.layer("conv1").weight[:, :, [0, 4]] = 0          # outer kernel rows: 5x5 -> 3x5
        net.layer("conv1").weight[[1, 3]] = 0
    save_caffemodel(net, tmp_path / "m.caffemodel")
    ok = run_cli(["compact", "-model", "m.prototxt", "-weights", "m.caffemodel",
                  "--out_model", "s.prototxt", "--out_weights", "s.caffemodel"], tmp_path,
                 check=True)
    assert re.search(r"^conv1 +Convolution +6x1x5x5 -> 4x1x3x5", ok.stdout, re.M)
    conv1 = caffe.read_net_prototxt(tmp_path / "s.prototxt").layer[0].convolution_param
    assert (conv1.kernel_h, conv1.kernel_w, conv1.pad_h, conv1.pad_w) == (3, 5, 1, 2)

    def fails(args: list[str], *expected: str) -> None:
        proc = run_cli(["compact", *args], tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        for text in expected:
            assert text in proc.stderr, proc.stderr

    base = ["--out-model", "o.prototxt", "--out-weights", "o.caffemodel"]
    fails(["--model", "m.prototxt", "--weights", "nope.caffemodel", *base],
          "nope.caffemodel: no such file")
    fails(["--model", "m.prototxt", "--weights", "m.caffemodel", "--round-to", "0", *base],
          "--round-to 0")
    fails(["--model", "m.prototxt", "--weights", "m.caffemodel", "--out-model", "m.prototxt",
           "--out-weights", "o.caffemodel"], "--out-model m.prototxt: is the input file")
    fails(["--model", "m.prototxt", "--weights", "m.caffemodel", "--phase", "VAL", *base],
          "--phase 'VAL'")
    # weights of another model: the layer, the blob and both shapes are named
    (tmp_path / "other.prototxt").write_text(LENET_IN.replace("num_output: 6", "num_output: 8"))
    fails(["--model", "other.prototxt", "--weights", "m.caffemodel", *base],
          "m.caffemodel: layer 'conv1' blob 0: shape mismatch")
    # a caffemodel that lacks a layer would compact filler values: refused
    (tmp_path / "more.prototxt").write_text(LENET_IN + """
layer { name: "conv3" type: "Convolution" bottom: "conv2" top: "conv3"
  convolution_param { num_output: 2 kernel_size: 1 } }""")
    fails(["--model", "more.prototxt", "--weights", "m.caffemodel", *base],
          "m.caffemodel: has no weights for layer(s) conv3 of more.prototxt")
    assert not (tmp_path / "o.prototxt").exists() and not (tmp_path / "o.caffemodel").exists()
