"""BatchNorm (+ Scale) folded into the Convolution / InnerProduct before it (compact/fold_bn.py):
the folded TEST net computes what the unfolded one computes; what cannot be folded exactly stays
and is reported; `prunekit compact --fold-bn` and `prunekit speedup --fold-bn` through the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import torch

from prunekit import caffe, cli
from prunekit.compact.fold_bn import fold_batch_norms
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_caffemodel, load_net_param_blobs, net_blobs, save_caffemodel
from prunekit.solver.evaluate import evaluate

#: Data layers for both phases (DummyData, so `prunekit test` runs without a dataset) feeding a
#: small ResNet-style net: conv-BN-Scale-ReLU without conv bias (in place), a grouped conv with
#: a not-in-place BN + Scale, a depthwise conv whose Scale has no bias, an Eltwise, an
#: InnerProduct + BN + Scale, and a transposed InnerProduct whose BN (no Scale) writes the output.
RES_NET = """
name: "tiny_res"
layer { name: "data" type: "DummyData" top: "data" include { phase: TRAIN }
  dummy_data_param { shape { dim: 4 dim: 3 dim: 8 dim: 8 } data_filler { type: "gaussian" } } }
layer { name: "data" type: "DummyData" top: "data" include { phase: TEST }
  dummy_data_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } data_filler { type: "gaussian" } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 bias_term: false } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" batch_norm_param { eps: 0.001 } }
layer { name: "scale1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 4 } }
layer { name: "bn2" type: "BatchNorm" bottom: "conv2" top: "bn2" }
layer { name: "scale2" type: "Scale" bottom: "bn2" top: "scale2" scale_param { bias_term: true } }
layer { name: "relu2" type: "ReLU" bottom: "scale2" top: "scale2" }
layer { name: "conv3" type: "Convolution" bottom: "scale2" top: "conv3"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 group: 8 bias_term: false } }
layer { name: "bn3" type: "BatchNorm" bottom: "conv3" top: "conv3"
  batch_norm_param { use_global_stats: true } }
layer { name: "scale3" type: "Scale" bottom: "conv3" top: "conv3" }
layer { name: "sum" type: "Eltwise" bottom: "conv1" bottom: "conv3" top: "sum" }
layer { name: "relu3" type: "ReLU" bottom: "sum" top: "sum" }
layer { name: "pool" type: "Pooling" bottom: "sum" top: "pool"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc"
  inner_product_param { num_output: 6 } }
layer { name: "bn_fc" type: "BatchNorm" bottom: "fc" top: "fc" }
layer { name: "scale_fc" type: "Scale" bottom: "fc" top: "fc" scale_param { bias_term: true } }
layer { name: "fc2" type: "InnerProduct" bottom: "fc" top: "fc2"
  inner_product_param { num_output: 5 transpose: true } }
layer { name: "bn_fc2" type: "BatchNorm" bottom: "fc2" top: "out" }
"""

#: BatchNorms that must stay: after a Concat, after a conv whose top a ReLU reads too, one with
#: batch statistics in TEST; and a BN whose Scale takes its factor from a second bottom.
UNFOLDABLE_NET = """
name: "unfoldable"
layer { name: "data" type: "Input" top: "data"
  input_param { shape { dim: 2 dim: 4 dim: 6 dim: 6 } } }
layer { name: "ca" type: "Convolution" bottom: "data" top: "ca"
  convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "cb" type: "Convolution" bottom: "data" top: "cb"
  convolution_param { num_output: 3 kernel_size: 1 } }
layer { name: "cat" type: "Concat" bottom: "ca" bottom: "cb" top: "cat" }
layer { name: "bn_cat" type: "BatchNorm" bottom: "cat" top: "cat" }
layer { name: "c2" type: "Convolution" bottom: "cat" top: "c2"
  convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "relu_c2" type: "ReLU" bottom: "c2" top: "c2_relu" }
layer { name: "bn_c2" type: "BatchNorm" bottom: "c2" top: "bn_c2" }
layer { name: "c3" type: "Convolution" bottom: "bn_c2" top: "c3"
  convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "bn_c3" type: "BatchNorm" bottom: "c3" top: "c3"
  batch_norm_param { use_global_stats: false } }
layer { name: "c4" type: "Convolution" bottom: "c3" top: "c4"
  convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "bn_c4" type: "BatchNorm" bottom: "c4" top: "c4" }
layer { name: "scale_c4" type: "Scale" bottom: "c4" bottom: "c2_relu" top: "c4"
  scale_param { axis: 0 } }
"""


def _randomise(net: Net, seed: int = 0, factor: float = 7.5) -> None:
    """Random weights, biases, Scale γ/β and BatchNorm statistics stored as Caffe stores them:
    sums, with moving_average_factor ``factor`` (0 for bn_fc2: its statistics then read as 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for entry, module in net.named_layers():
            for name in module.blob_names:
                blob = getattr(module, name)
                blob.copy_(torch.randn(blob.shape, generator=gen) * 0.5)
            if entry.type == "BatchNorm":
                f = 0.0 if entry.name == "bn_fc2" else factor
                module.mean.mul_(f)
                module.variance.copy_((torch.rand(module.variance.shape, generator=gen) * 2
                                       + 0.1) * f)
                module.moving_average_factor.fill_(f)


def _built(param, blobs=None, seed: int = 0) -> Net:
    net = Net(param, TEST)
    if blobs is None:
        _randomise(net, seed)
    else:
        load_net_param_blobs(net, blobs, "<test>")
    return net


def _outputs(net: Net, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return net({"data": x})[1]


def _worst(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) / float(a[k].abs().max()) for k in a)


def test_folded_resnet_style_net_gives_the_test_outputs() -> None:
    param = caffe.parse_net_text(RES_NET)
    before = param.SerializeToString()
    net = _built(param)
    blobs = net_blobs(net)
    folding = fold_batch_norms(param, blobs)
    assert param.SerializeToString() == before          # the input is not modified
    assert [str(f) for f in folding.folded] == [
        "bn1 + scale1 -> conv1", "bn2 + scale2 -> conv2", "bn3 + scale3 -> conv3",
        "bn_fc + scale_fc -> fc", "bn_fc2 -> fc2"]
    assert folding.left == []
    assert folding.summary().startswith("folded 5 BatchNorm and 4 Scale layer(s)")
    layers = {lp.name: lp for lp in folding.net_param.layer}
    assert not any(lp.type in ("BatchNorm", "Scale") for lp in folding.net_param.layer)
    assert len(folding.net_param.layer) == len(param.layer) - 9
    assert not set(folding.blobs) & {"bn1", "scale1", "bn_fc2"}
    # both phases' data layers and their include rules stay; the convs got a bias
    assert [lp for lp in folding.net_param.layer if lp.name == "data"] == list(param.layer[:2])
    assert layers["conv1"].convolution_param.bias_term and len(folding.blobs["conv1"]) == 2
    assert layers["conv2"].top == ["scale2"] and layers["fc2"].top == ["out"]  # rewired
    small = _built(folding.net_param, folding.blobs)
    assert len(small.entries) == len(net.entries) - 9
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    a, b = _outputs(net, x), _outputs(small, x)
    assert list(a) == ["out"]
    assert _worst(a, b) <= 1e-5
    # not vacuous: the folded prototxt with the convs' own weights (bias 0 where there was
    # none) computes something else
    unscaled = dict(folding.blobs)
    for fold in folding.folded:
        w = blobs[fold.into]
        unscaled[fold.into] = [w[0], w[1] if len(w) > 1 else 0 * folding.blobs[fold.into][1]]
    assert _worst(a, _outputs(_built(folding.net_param, unscaled), x)) > 1e-2


def test_legacy_tensor_blobs_and_grouped_weights_are_scaled_per_output_channel() -> None:
    param = caffe.parse_net_text(RES_NET)
    net = _built(param, seed=3)
    tensors = {e.name: list(m.caffe_blobs()) for e, m in net.named_layers()}
    folding = fold_batch_norms(param, tensors)
    conv2, bn2, scale2 = (tensors[n] for n in ("conv2", "bn2", "scale2"))
    factor = float(bn2[2])
    s = scale2[0].double() / torch.sqrt(bn2[1].double() / factor + 1e-5)
    expect_w = conv2[0].double() * s[:, None, None, None]
    expect_b = (conv2[1].double() - bn2[0].double() / factor) * s + scale2[1].double()
    got_w, got_b = (torch.from_numpy(a).double() for a in folding.blobs["conv2"])
    assert got_w.shape == (8, 2, 3, 3)
    assert torch.allclose(got_w, expect_w, rtol=1e-6, atol=1e-7)
    assert torch.allclose(got_b, expect_b, rtol=1e-6, atol=1e-6)


def test_unfoldable_batch_norms_stay_and_are_reported() -> None:
    param = caffe.parse_net_text(UNFOLDABLE_NET)
    net = _built(param, seed=1)
    folding = fold_batch_norms(param, net_blobs(net))
    reasons = {item.layer: item.reason for item in folding.left}
    assert reasons["bn_cat"] == "input is a Concat (cat)"
    assert reasons["bn_c2"] == "c2's top 'c2' is also read by relu_c2"
    assert reasons["bn_c3"] == "uses batch statistics in TEST (use_global_stats: false)"
    assert reasons["scale_c4"].startswith("two bottoms")
    assert [str(f) for f in folding.folded] == ["bn_c4 -> c4"]
    names = [lp.name for lp in folding.net_param.layer]
    assert {"bn_cat", "bn_c2", "bn_c3", "scale_c4"} <= set(names) and "bn_c4" not in names
    x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    small = _built(folding.net_param, folding.blobs)
    assert _worst(_outputs(net, x), _outputs(small, x)) <= 1e-5
    assert any("left bn_cat: input is a Concat" in line for line in folding.lines())


# ------------------------------------------------------------------------------ the CLI
def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _masked_model(tmp_path: Path) -> None:
    """res.prototxt and masked.caffemodel: RES_NET with random weights, 3 of conv2's 8 filters
    (two of its four groups' worth of rows, but not whole groups) and 2 of fc's rows zeroed."""
    (tmp_path / "res.prototxt").write_text(RES_NET)
    net = _built(caffe.parse_net_text(RES_NET), seed=4)
    with torch.no_grad():
        net.layer("conv2").weight[[1, 4, 5]] = 0
        net.layer("fc").weight[[0, 3]] = 0
    save_caffemodel(net, tmp_path / "masked.caffemodel")
    net.close()


def _scores(stderr: str) -> list[float]:
    return [float(v) for v in re.findall(r"Batch \d+, out = ([-0-9.e+]+)", stderr)]


def test_compact_fold_bn_writes_a_smaller_model_that_scores_the_same(tmp_path: Path) -> None:
    _masked_model(tmp_path)
    proc = _cli(["compact", "--model", "res.prototxt", "--weights", "masked.caffemodel",
                 "--out-model", "small.prototxt", "--out-weights", "small.caffemodel",
                 "--fold-bn"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fold-bn: folded 5 BatchNorm and 4 Scale layer(s)" in proc.stdout
    check = re.search(r"max \|masked - compacted\+folded\| .*relative ([0-9.e+-]+)\)", proc.stdout)
    assert check and float(check.group(1)) <= 1e-5
    small = caffe.read_net_prototxt(tmp_path / "small.prototxt")
    original = caffe.read_net_prototxt(tmp_path / "res.prototxt")
    assert len(small.layer) == len(original.layer) - 9
    assert not any(lp.type in ("BatchNorm", "Scale") for lp in small.layer)
    weights = caffe.layer_blobs(caffe.read_caffemodel(tmp_path / "small.caffemodel"))
    assert "bn1" not in weights and weights["fc"][0].shape == (4, 8)  # compacted and folded
    # `prunekit test` scores the folded model as the masked one scores in the TEST phase (the
    # masked one in-process, the same DummyData batches: one subprocess less)
    scored = _cli(["test", "--model", "small.prototxt", "--weights", "small.caffemodel",
                   "--iterations", "2"], tmp_path)
    assert scored.returncode == 0, scored.stderr
    folded = _scores(scored.stderr)
    expected: list[float] = []
    net = Net(caffe.read_net_prototxt(tmp_path / "res.prototxt"), TEST)
    net.set_seed(0)
    load_caffemodel(net, tmp_path / "masked.caffemodel")
    evaluate(net, 2, lambda i, batch, loss: expected.extend(v for _, v, _ in batch))
    net.close()
    assert len(expected) == 2 * 2 * 5 and len(folded) == len(expected)
    scale = max(abs(v) for v in expected)
    assert max(abs(a - b) for a, b in zip(expected, folded)) <= 1e-4 * scale


def test_fold_bn_with_train_phase_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    _masked_model(tmp_path)
    proc = _cli(["compact", "--model", "res.prototxt", "--weights", "masked.caffemodel",
                 "--out-model", "small.prototxt", "--out-weights", "small.caffemodel",
                 "--fold-bn", "--phase", "TRAIN"], tmp_path)
    assert proc.returncode == 1
    assert "--fold-bn with --phase TRAIN" in proc.stderr and "batch statistics" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "small.prototxt").exists()
    assert not (tmp_path / "small.caffemodel").exists()


def test_speedup_fold_bn_times_both_nets_folded(tmp_path: Path, monkeypatch, capsys) -> None:
    """Through ``prunekit.cli.main`` in this process (the subprocess runs above cover the
    process boundary; a third would double this file's run time)."""
    _masked_model(tmp_path)
    monkeypatch.chdir(tmp_path)
    common = ["speedup", "--model", "res.prototxt", "--weights", "masked.caffemodel",
              "--vs-model", "res.prototxt", "--rounds", "1", "--iterations", "1", "--fold-bn"]
    assert cli.main(common + ["--phase", "TRAIN"]) == 1
    assert "--fold-bn with --phase TRAIN" in capsys.readouterr().err
    assert cli.main(common + ["--json", "s.json"]) == 0
    assert capsys.readouterr().out.count("folded 5 BatchNorm and 4 Scale layer(s)") == 2
    record = json.loads((tmp_path / "s.json").read_text())
    assert record["fold_bn"] is True
    assert record["folded_batch_norms"] == {"model": 5, "vs_model": 5}
    assert not any(r["type"] in ("BatchNorm", "Scale") for r in record["layers"])
    assert {"conv1", "fc2"} <= {r["name"] for r in record["layers"]}
