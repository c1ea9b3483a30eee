"""`prunekit export`: the ONNX and TorchScript files reload and run in a Python that cannot
import prunekit, and give prunekit's outputs; bad requests are clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import LENET_DIR, run_cli
from prunekit import caffe
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import save_caffemodel

RESIDUAL = """
name: "res"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "sc1" type: "Scale" bottom: "conv1" top: "conv1" scale_param { bias_term: true } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  convolution_param { num_output: 8 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "add" type: "Eltwise" bottom: "conv1" bottom: "conv2" top: "add" }
layer { name: "gap" type: "Pooling" bottom: "add" top: "gap" pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "gap" top: "fc"
  inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""

RELOAD = r"""
import sys
sys.modules["prunekit"] = None          # any use of prunekit's classes would fail
import numpy as np, torch
kind, path, x_path, out_path = sys.argv[1:5]
x = np.load(x_path)
if kind == "torchscript":
    y = torch.jit.load(path)(torch.from_numpy(x))[0].detach().numpy()
else:
    import onnxruntime as ort
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"data": x})[0]
np.save(out_path, y)
"""


def _model(workdir: Path, text: str | None) -> tuple[str, np.ndarray, np.ndarray]:
    """Prototxt + random caffemodel in workdir; a fixed input and prunekit's output for it."""
    if text is None:
        text = (LENET_DIR / "deploy.prototxt").read_text()
    (workdir / "m.prototxt").write_text(text)
    torch.manual_seed(1)
    net = Net(caffe.parse_net_text(text), TEST)
    with torch.no_grad():
        for module in net.layer_modules.values():
            for blob in module.caffe_blobs():
                if blob.dtype.is_floating_point and blob.abs().sum() == 0:
                    blob.normal_(0, 0.1).abs_()  # BN statistics and zero-filled biases
    save_caffemodel(net, workdir / "m.caffemodel")
    shape = next(iter(net.blob_shapes.values()))
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        _, outputs = net({"data": x})
    (y,) = outputs.values()
    return "m.prototxt", x.numpy(), y.numpy()


@pytest.mark.parametrize("kind,suffix", [("torchscript", "pt"), ("onnx", "onnx")])
@pytest.mark.parametrize("net_text", [None, RESIDUAL], ids=["lenet5", "residual"])
def test_export_reloads_without_prunekit(workdir: Path, kind: str, suffix: str, net_text) -> None:
    if kind == "onnx":
        pytest.importorskip("onnxruntime")
    model, x, expected = _model(workdir, net_text)
    proc = run_cli(["export", "--model", model, "--weights", "m.caffemodel", f"--{kind}",
                    f"m.{suffix}"], workdir, check=True)
    assert "Round trip of output #0" in proc.stderr
    np.save(workdir / "x.npy", x)
    subprocess.run([sys.executable, "-c", RELOAD, kind, f"m.{suffix}", "x.npy", "y.npy"],
                   cwd=workdir, check=True, capture_output=True, text=True, timeout=120)
    got = np.load(workdir / "y.npy")
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    assert not list(workdir.glob("tmp-export-*"))


def test_export_refuses_what_it_cannot_do(workdir: Path) -> None:
    import shutil
    shutil.copy(LENET_DIR / "train_val.prototxt", workdir / "tv.prototxt")
    bad = run_cli(["export", "--model", "tv.prototxt", "--onnx", "x.onnx"], workdir)
    assert bad.returncode == 1 and "Data layer" in bad.stderr and "Traceback" not in bad.stderr
    both = run_cli(["export", "--model", "tv.prototxt", "--onnx", "a", "--torchscript", "b"], workdir)
    assert both.returncode == 1 and "exactly one" in both.stderr
    assert not (workdir / "x.onnx").exists()


TRAIN_VAL_LAYERS = """
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 6 kernel_size: 3 weight_filler { type: "msra" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc"
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
"""
TRAIN_VAL = ("""name: "tv"
layer { name: "input" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } shape { dim: 2 } } }
""" + TRAIN_VAL_LAYERS + """
layer { name: "accuracy" type: "Accuracy" bottom: "fc" bottom: "label" top: "accuracy"
  include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc" bottom: "label" top: "loss" }
""")
#: What a Caffe user's deploy.prototxt for TRAIN_VAL is, written by hand.
DEPLOY = ("""name: "tv"
layer { name: "input" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
""" + TRAIN_VAL_LAYERS + """
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
""")


def test_export_train_val_gives_the_deploy_net(workdir: Path) -> None:
    """A train_val (Input giving data and label, Accuracy, SoftmaxWithLoss) exports its inference
    part: one input ``data``, one output ``prob``, equal in onnxruntime to the hand-written
    deploy net run by prunekit with the same weights."""
    ort = pytest.importorskip("onnxruntime")
    deploy, x, expected = _model(workdir, DEPLOY)
    (workdir / "tv.prototxt").write_text(TRAIN_VAL)
    proc = run_cli(["export", "--model", "tv.prototxt", "--weights", "m.caffemodel", "--onnx",
                    "tv.onnx"], workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Round trip of output #0" in proc.stderr
    assert "dropped Accuracy 'accuracy'" in proc.stderr and "dropped input 'label'" in proc.stderr
    session = ort.InferenceSession(str(workdir / "tv.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["data"]
    assert [o.name for o in session.get_outputs()] == ["prob"]
    (got,) = session.run(None, {"data": x})
    assert got.shape == expected.shape == (2, 4)
    assert np.abs(got - expected).max() <= 1e-5
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
