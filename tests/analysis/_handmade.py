"""A three-conv net whose sensitivity is known by construction (shared by the analysis tests).

data (2×1×8×8, random) → conv_a (4 filters) → ReLU → conv_b (4 filters; filters 2 and 3 are
all zero: dead) → ReLU → conv_c (2 filters, the net's output: fragile, each filter is half of
the output). MACs per pixel: conv_a 36, conv_b 144, conv_c 72 (all 3×3, pad 1, 8×8 output).

Known answers: pruning conv_b's rows (L1) up to half loses exactly nothing; conv_c loses most;
a plan for 252/180 = 1.4x prunes conv_b by 0.5 and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import torch

from prunekit import caffe
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import save_caffemodel

PROTOTXT = """name: "handmade"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv_a" type: "Convolution" bottom: "data" top: "a"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu_a" type: "ReLU" bottom: "a" top: "a" }
layer { name: "conv_b" type: "Convolution" bottom: "a" top: "b"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu_b" type: "ReLU" bottom: "b" top: "b" }
layer { name: "conv_c" type: "Convolution" bottom: "b" top: "c"
        convolution_param { num_output: 2 kernel_size: 3 pad: 1 } }
"""
MACS = {"conv_a": 36 * 64, "conv_b": 144 * 64, "conv_c": 72 * 64}


def make(folder: Path) -> tuple[Path, Path]:
    """(prototxt, caffemodel) of the hand-made net in ``folder``."""
    model, weights = folder / "handmade.prototxt", folder / "handmade.caffemodel"
    model.write_text(PROTOTXT)
    net = Net(caffe.read_net_prototxt(model), TEST, source=str(model))
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name in ("conv_a", "conv_b", "conv_c"):
            layer = net.layer(name)
            layer.weight.copy_(torch.rand(layer.weight.shape, generator=g) + 0.5)
            layer.bias.zero_()
        net.layer("conv_b").weight[2:] = 0
    save_caffemodel(net, weights)
    return model, weights
