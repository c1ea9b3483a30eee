"""Channel items honour the channel model: convs summed by an Eltwise prune the same channels
together, and every consumer of those channels loses the matching input columns."""

from __future__ import annotations

import torch

from prunekit import caffe
from prunekit.analysis import units
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST

RESIDUAL = """name: "residual"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
layer { name: "conv0" type: "Convolution" bottom: "data" top: "x"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu0" type: "ReLU" bottom: "x" top: "x" }
layer { name: "conv1" type: "Convolution" bottom: "x" top: "y"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "sum" type: "Eltwise" bottom: "x" bottom: "y" top: "s" }
layer { name: "conv2" type: "Convolution" bottom: "s" top: "out"
        convolution_param { num_output: 3 kernel_size: 1 } }
"""


def _net() -> Net:
    net = Net(caffe.parse_net_text(RESIDUAL), TEST)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in ("conv0", "conv1", "conv2"):
            w = net.layer(name).weight
            w.copy_(torch.rand(w.shape, generator=g) + 0.1)
        net.layer("conv0").weight[1] *= 0.01     # channel 1 is the weakest of the class
        net.layer("conv1").weight[1] *= 0.01
    return net


def test_eltwise_coupled_convs_are_one_channel_item() -> None:
    found = units.items(_net(), "Channel")
    assert [(i.name, i.members) for i in found] == [("conv0", ["conv0", "conv1"])]
    assert found[0].consumers == ["conv1", "conv2"]
    assert [i.name for i in units.items(_net(), "Row")] == ["conv0", "conv1", "conv2"]


def test_channel_pruning_zeroes_coupled_rows_and_consumer_columns() -> None:
    net = _net()
    item = units.items(net, "Channel")[0]
    units.prune(net, item, "Channel", "l1", 0.25)                 # one of four channels
    w0, w1, w2 = (net.layer(n).weight.detach() for n in ("conv0", "conv1", "conv2"))
    zero_rows = [int(r) for r in range(4) if bool((w0[r] == 0).all())]
    assert zero_rows == [1]
    assert bool((w1[1] == 0).all())                              # the coupled producer too
    assert bool((w1[:, 1] == 0).all()) and bool((w2[:, 1] == 0).all())   # consumers' columns
    assert int((w0 == 0).sum()) == w0[1].numel()                 # nothing else
    assert int((w2 == 0).sum()) == 3
