"""``--caffe-input``: the imported net on Caffe-style input (BGR pixels 0–255 minus
103.53, 116.28, 123.675) equals the original ONNX model on torchvision-normalised RGB input."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402
from importer_helpers import ort_outputs, relative_error  # noqa: E402

from prunekit import caffe  # noqa: E402
from prunekit.importer.torchvision_source import export_onnx  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402
from prunekit.net.weights import load_caffemodel  # noqa: E402


def test_caffe_input_folds_rgb_normalisation_into_first_conv(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(6, 5))
    export_onnx(model, (1, 3, 12, 12), str(tmp_path / "m.onnx"))
    run_cli(["import", "--onnx", "m.onnx", "--caffe-input", "--out-model", "d.prototxt",
             "--out-weights", "w.caffemodel", "--train-val", "tv.prototxt",
             "--train-source", "a", "--test-source", "b"], tmp_path, check=True)
    pixels_rgb = np.random.default_rng(0).integers(0, 256, (1, 3, 12, 12)).astype(np.float32)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    normalised = ((pixels_rgb / 255 - mean[:, None, None]) / std[:, None, None]).astype(np.float32)
    (want,) = ort_outputs(tmp_path / "m.onnx", normalised)
    caffe_input = pixels_rgb[:, ::-1] - np.array([103.53, 116.28, 123.675])[:, None, None]
    net = Net(caffe.read_net_prototxt(tmp_path / "d.prototxt"), TEST, source="d")
    load_caffemodel(net, tmp_path / "w.caffemodel")
    with torch.no_grad():
        _, out = net({"data": torch.from_numpy(np.ascontiguousarray(caffe_input, np.float32))})
    (got,) = out.values()
    assert relative_error(got.numpy(), want) < 1e-4
    train_val = (tmp_path / "tv.prototxt").read_text()
    assert "mean_value: 103.53" in train_val and "mean_value: 123.675" in train_val
