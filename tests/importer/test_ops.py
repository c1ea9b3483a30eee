"""Ops beyond the nine torchvision nets: each small graph imports and gives onnxruntime's
outputs (asymmetric pads, ConvTranspose output_padding, ceil-mode pooling with padding,
dilated and grouped convs, the activations, constant arithmetic, Split, MatMul, Softmax)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from importer_helpers import ort_outputs, relative_error

from prunekit.importer import import_onnx
from prunekit.importer.torchvision_source import export_onnx
from prunekit.importer.verify import build_net, check_shapes

onnx = pytest.importorskip("onnx")


class ManyOps(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=2, dilation=2)
        self.group = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4)
        self.up = nn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1)
        self.prelu = nn.PReLU(6)
        self.fc = nn.Linear(6, 5)
        self.head = nn.Linear(5, 4)
        self.offset = nn.Parameter(torch.randn(1, 6, 1, 1))

    def forward(self, x):
        x = F.leaky_relu(self.conv(x), 0.1)
        x = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True)
        x = F.max_pool2d(torch.tanh(x), 3, 2, 1, ceil_mode=True)
        x = F.elu(self.group(x))
        x = self.prelu(self.up(x)) - self.offset
        a, b = torch.split(x, [2, 4], dim=1)
        x = torch.cat([F.hardsigmoid(a) * 3 + 1, F.relu6(b) / 2, F.silu(a)], 1)
        x = F.hardswish(x).mean((2, 3), keepdim=True)[:, :6].flatten(1)
        y = self.fc(x.view(x.shape[0], 1, 6)).flatten(1)
        return torch.softmax(self.head(y), 1)


def _import_and_compare(module, shape, tmp_path):
    path = tmp_path / "m.onnx"
    torch.manual_seed(0)
    export_onnx(module, shape, str(path))
    imported = import_onnx(str(path))
    net = build_net(imported)
    check_shapes(imported, net)
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    (want,) = ort_outputs(path, x)
    with torch.no_grad():
        _, outputs = net({"data": torch.from_numpy(x)})
    (got,) = outputs.values()
    assert relative_error(got.numpy(), want) < 1e-4
    return imported


def test_many_ops_match_onnxruntime(tmp_path):
    torch.manual_seed(0)
    imported = _import_and_compare(ManyOps().eval(), (2, 3, 23, 21), tmp_path)
    types = {lp.type for lp in imported.net_param.layer}
    assert {"Deconvolution", "PReLU", "Clip", "Power", "Swish", "HardSwish", "Slice",
            "InnerProduct", "Softmax", "ELU", "TanH", "Bias"} <= types


def test_asymmetric_pads_crop_with_slice(tmp_path):
    """A TF-style 'SAME' stride-2 conv (pads 0 before, 1 after) and max pool (1 before,
    2 after): Caffe pads symmetrically, then Slice layers drop the extra windows."""
    helper = onnx.helper
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="c", strides=[2, 2],
                              pads=[0, 0, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["y"], name="p", kernel_shape=[3, 3],
                              strides=[1, 1], pads=[1, 1, 2, 2])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 9, 10])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(w, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    imported = import_onnx(str(path))
    net = build_net(imported)
    check_shapes(imported, net)
    x = np.random.default_rng(1).standard_normal((1, 3, 9, 10)).astype(np.float32)
    (want,) = ort_outputs(path, x)
    with torch.no_grad():
        _, outputs = net({"data": torch.from_numpy(x)})
    (got,) = outputs.values()
    assert got.shape == want.shape
    assert relative_error(got.numpy(), want) < 1e-5
    assert [lp.type for lp in imported.net_param.layer].count("Slice") >= 2
