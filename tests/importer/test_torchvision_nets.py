"""The nine torchvision architectures of issue 16 (random weights with non-trivial BatchNorm
statistics, eval mode, torch.onnx.export) import through the real CLI; prunekit's outputs at
batch 2 equal onnxruntime's on the original ONNX file within 1e-4 of the output scale, and
``prunekit flops`` equals a MAC count made from the ONNX graph's shapes alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402
from importer_helpers import (NETS, onnx_macs, ort_first_output_per_image,  # noqa: E402
                              relative_error, torchvision_onnx)

from prunekit import caffe  # noqa: E402
from prunekit.net.batch_size import with_batch_size  # noqa: E402
from prunekit.net.graph import Net  # noqa: E402
from prunekit.net.layers.base import TEST  # noqa: E402
from prunekit.net.weights import load_caffemodel  # noqa: E402


@pytest.mark.parametrize("name", list(NETS))
def test_torchvision_net_imports_with_onnxruntime_outputs_and_onnx_macs(name, tmp_path):
    model = tmp_path / f"{name}.onnx"
    shape = torchvision_onnx(name, model, seed=1)
    deploy, weights = tmp_path / "deploy.prototxt", tmp_path / "w.caffemodel"
    run_cli(["import", "--onnx", str(model), "--out-model", str(deploy),
             "--out-weights", str(weights)], tmp_path, check=True)

    rng = np.random.default_rng(7)
    x = rng.standard_normal((2,) + shape[1:]).astype(np.float32)
    want = ort_first_output_per_image(model, x)
    net = Net(with_batch_size(caffe.read_net_prototxt(deploy), 2), TEST, source=str(deploy))
    load_caffemodel(net, weights)
    net.eval()
    with torch.no_grad():
        _, outputs = net({"data": torch.from_numpy(x)})
    (got,) = outputs.values()
    assert got.shape == want.shape
    assert relative_error(got.numpy(), want) < 1e-4

    report = json.loads(run_cli(["flops", "--model", str(deploy), "--json"], tmp_path,
                                check=True).stdout)
    expected = onnx_macs(model)
    totals = report["totals"]
    fc = sum(r["macs"] for r in report["layers"] if r["type"] == "InnerProduct")
    assert (totals["conv_macs"], fc, totals["all_macs"]) == (
        expected["conv"], expected["fc"], expected["all"])
