"""Issue 16, must show: on imported torchvision ResNet-18 and MobileNetV2, L1_Row filter masks
(``prunekit import --train-val --prune-method L1_Row`` → ``prunekit train``, one round at
iteration 0) reaching 2x conv MACs compact (depthwise convs coupled with their input channels,
residual adds) to a net whose outputs equal the masked net's within 1e-4 of the output scale,
whose conv MACs (``prunekit flops``) really halve, and whose ``prunekit export --onnx`` file
gives the same outputs in onnxruntime."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402
from importer_helpers import ort_outputs, relative_error  # noqa: E402
from prune_helpers import deploy_outputs, import_for_training, shorten_solver  # noqa: E402

from prunekit import caffe  # noqa: E402

#: prune_ratio of every conv: 0.5 gives masks at exactly 2.00x conv MACs, but compact keeps
#: filters that a residual add or a depthwise conv ties to unpruned channels (1.98x / 1.90x
#: compacted), so the ratio is set to where the *compacted* net is at least 2x smaller.
RATIOS = {"resnet18": 0.52, "mobilenet_v2": 0.6}


def _conv_macs(workdir: Path, model: str, weights: str | None = None) -> dict:
    args = ["flops", "--model", model, "--json"] + (["--weights", weights] if weights else [])
    return json.loads(run_cli(args, workdir, check=True).stdout)["totals"]


def _depthwise(prototxt: Path) -> dict[str, int]:
    """name → channels of each depthwise conv (group == num_output > 1)."""
    return {lp.name: lp.convolution_param.num_output
            for lp in caffe.read_net_prototxt(prototxt).layer
            if lp.type == "Convolution" and lp.convolution_param.group > 1
            and lp.convolution_param.group == lp.convolution_param.num_output}


@pytest.mark.parametrize("name", list(RATIOS))
def test_l1_row_masks_compact_to_half_the_conv_macs_and_export(name, tmp_path):
    import_for_training(name, tmp_path, "L1_Row", RATIOS[name])
    shorten_solver(tmp_path / "solver.prototxt", {
        "max_iter: 10000 ": "max_iter: 2 ", "test_iter: 10": "test_iter: 1",
        "display: 20": "display: 1"})
    proc = run_cli(["train", "--solver", "solver.prototxt", "--weights", "w.caffemodel"],
                   tmp_path, check=True)
    assert "Pruning done. Final model: ./weights/_iter_2.caffemodel (L1_Row" in proc.stderr
    masked = "weights/_iter_2.caffemodel"
    run_cli(["compact", "--model", "deploy.prototxt", "--weights", masked, "--out-model",
             "small.prototxt", "--out-weights", "small.caffemodel", "--column-conv", "never"],
            tmp_path, check=True)

    masks = _conv_macs(tmp_path, "deploy.prototxt", masked)
    dense = masks["conv_macs"]
    small = _conv_macs(tmp_path, "small.prototxt")["conv_macs"]
    assert masks["conv_macs_left"] <= dense / 2
    assert small <= dense / 2, (dense, masks["conv_macs_left"], small)
    before, after = _depthwise(tmp_path / "deploy.prototxt"), _depthwise(tmp_path / "small.prototxt")
    assert set(before) == set(after)
    assert all(after[k] < before[k] for k in before)  # each depthwise conv lost channels

    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)
    want = deploy_outputs(tmp_path / "deploy.prototxt", tmp_path / masked, x)
    got = deploy_outputs(tmp_path / "small.prototxt", tmp_path / "small.caffemodel", x)
    assert got.shape == want.shape == (2, 1000)
    assert relative_error(got, want) < 1e-4

    run_cli(["export", "--model", "small.prototxt", "--weights", "small.caffemodel",
             "--onnx", "small.onnx", "--batch", "2"], tmp_path, check=True)
    (onnx_out, *_) = ort_outputs(tmp_path / "small.onnx", x)
    assert relative_error(onnx_out, want) < 1e-4
