"""The compacted nets are ordinary dense nets: exported with torch.onnx and run in onnxruntime,
they reproduce the masked model's outputs (non-square kernels, a cropped input, groups, Concat,
LRN, BatchNorm; VGG-16 and ResNet-50 with the masks of test_models, as the issue asks).
Skipped when onnx / onnxruntime are not installed (they are in the ``test`` extra)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from _compact_helpers import (EXP, build, compact_and_compare, conv_channels, half, load_param,
                              outputs, randomise, zero_filters)
from test_models import INCEPTION, _resnet_masks, lenet5_input_variant

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


class _Deploy(torch.nn.Module):
    """data -> the net's single output, as a plain module torch.onnx can trace."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net
        (self.output,) = net.output_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs = {}
        for entry, module in self.net.named_layers():
            if getattr(module, "is_data", False):
                tops = (x,)
            else:
                out = module(*[blobs[b] for b in entry.bottoms])
                tops = (out,) if isinstance(out, torch.Tensor) else tuple(out)
            blobs.update(zip(entry.tops, tops))
        return blobs[self.output]


def _masked_inception():
    # a fixed 20x20 AVE window instead of global_pooling: prunekit's global pooling takes its
    # window from the input's shape, which the TorchScript-based exporter cannot keep static
    param = load_param(INCEPTION.replace("global_pooling: true", "kernel_size: 20"))
    net = build(param)
    randomise(net, seed=7, bias_std=0.3)
    for name, rows in (("stem", [0, 5, 9]), ("a_1x1", [1, 2]), ("b_3x3", [0, 7]),
                       ("d_pw", [3, 4]), ("mix_1x1", [0, 1, 2, 3, 4])):
        zero_filters(net, name, rows)
    return param, net


def _masked_lenet():
    param = lenet5_input_variant()
    net = build(param)
    randomise(net, seed=8)
    with torch.no_grad():
        net.layer("conv1").weight[:, :, :, [0, 4]] = 0
        net.layer("conv2").weight[:, :, 2:, :] = 0     # a learnt 2x5 at pad 0: a Slice crop
    zero_filters(net, "conv1", [0, 3, 6, 9, 12])
    zero_filters(net, "conv2", list(range(0, 50, 3)))
    return param, net


def _masked_resnet50():
    # Eltwise-coupled residual channels and BatchNorm+Scale shifts on removed channels
    param = load_param(EXP / "resnet50" / "deploy.prototxt", drop=("prob",))
    net = build(param)
    _resnet_masks(net, randomise(net, seed=1))
    return param, net


def _masked_vgg16():
    param = load_param(EXP / "vgg16" / "deploy.prototxt", drop=("prob",))
    net = build(param)
    gen = randomise(net, seed=0)
    for name, shape in conv_channels(net).items():
        if name != "fc8":
            zero_filters(net, name, half(shape[0], gen))
    return param, net


@pytest.mark.parametrize("make", [_masked_inception, _masked_lenet, _masked_resnet50,
                                  _masked_vgg16])
def test_compacted_net_runs_in_onnxruntime(make, tmp_path: Path) -> None:
    param, net = make()
    _, small, worst = compact_and_compare(param, net)
    assert worst <= 1e-4
    shape = small.blob_shapes["data"]
    x = torch.randn(shape, generator=torch.Generator().manual_seed(11))
    path = tmp_path / "compacted.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # the tracer's notes on Caffe's shape arithmetic
        torch.onnx.export(_Deploy(small), (x,), str(path), dynamo=False,
                          input_names=["data"], output_names=["out"])
    onnx.checker.check_model(onnx.load(str(path)))
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"data": x.numpy()})[0]
    (expected,) = outputs(net, x).values()
    scale = float(expected.abs().max())
    assert float((torch.from_numpy(got) - expected).abs().max()) <= 1e-4 * scale
