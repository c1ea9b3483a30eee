"""`prunekit flops` through the real CLI: table, --json FILE, --json alone, and a clear error."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cli_helpers import run_cli
from prunekit import caffe
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import save_caffemodel

LENET = """
name: "l" input: "data" input_shape { dim: 2 dim: 1 dim: 28 dim: 28 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2"
  convolution_param { num_output: 50 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "ip1" type: "InnerProduct" bottom: "conv2" top: "ip1"
  inner_product_param { num_output: 500 weight_filler { type: "xavier" } } }
"""


def _net(text):
    return Net(caffe.parse_net_text(text), TEST)


def test_cli_table_and_json(tmp_path: Path) -> None:
    net = _net(LENET)
    net.layer("conv2").weight.data.view(50, 500)[:, 250:] = 0
    model = tmp_path / "m.prototxt"
    model.write_text(LENET)
    save_caffemodel(net, tmp_path / "m.caffemodel")
    proc = run_cli(["flops", "--model", "m.prototxt", "--weights", "m.caffemodel", "--json", "out.json"],
                   tmp_path, check=True)
    assert "MACs = multiply-accumulates per image (FLOPs = 2 x MACs)" in proc.stdout
    data = json.loads((tmp_path / "out.json").read_text())
    conv2 = next(r for r in data["layers"] if r["name"] == "conv2")
    assert conv2["macs_left"] == 50 * 250 * 64
    expected = (500 * 576 + 25000 * 64) / (500 * 576 + 12500 * 64)
    assert math.isclose(data["totals"]["conv_speedup"], expected)
    assert f"theoretical speedup {expected:.2f}x" in proc.stdout
    alone = run_cli(["flops", "--model", "m.prototxt", "--json"], tmp_path, check=True)
    assert json.loads(alone.stdout)["totals"]["conv_macs"] == 500 * 576 + 25000 * 64
    bad = run_cli(["flops", "--model", "missing.prototxt"], tmp_path)
    assert bad.returncode != 0 and "missing.prototxt" in bad.stderr and "Traceback" not in bad.stderr
    assert [r["name"] for r in data["layers"]][-4:] == ["conv1", "pool1", "conv2", "ip1"]
