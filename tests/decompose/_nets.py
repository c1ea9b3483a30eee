"""Small nets for the decomposition tests, built from prototxt text with random weights."""

from __future__ import annotations

import torch

from prunekit import caffe
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST

#: Input 2x4x13x11 -> conv "a" (3x3 pad 1) -> conv "b" (group 2, 3x5 kernel, stride (2,3),
#: pad (1,2), dilation 2) -> ReLU -> InnerProduct "fc" (transpose) -> InnerProduct "out".
SMALL = """
name: "small"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 4 dim: 13 dim: 11 } } }
layer { name: "a" type: "Convolution" bottom: "data" top: "a"
        param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 6 kernel_size: 3 pad: 1 } }
layer { name: "b" type: "Convolution" bottom: "a" top: "b"
        convolution_param { num_output: 8 kernel_h: 3 kernel_w: 5 stride_h: 2 stride_w: 3
                            pad_h: 1 pad_w: 2 dilation: 2 group: 2 } }
layer { name: "relu" type: "ReLU" bottom: "b" top: "b" }
layer { name: "fc" type: "InnerProduct" bottom: "b" top: "fc"
        inner_product_param { num_output: 7 transpose: true } }
layer { name: "out" type: "InnerProduct" bottom: "fc" top: "out" inner_product_param { num_output: 5 } }
"""


def small_param():
    return caffe.parse_net_text(SMALL)


def randomised(param, seed: int = 0) -> Net:
    """The TEST net of ``param`` with N(0, 1) weights and biases."""
    net = Net(param, TEST)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for blob in net.param_blobs():
            blob.tensor.copy_(torch.randn(blob.tensor.shape, generator=gen))
    return net


def blobs_of(net: Net) -> dict:
    return {e.name: [t.detach().float().numpy() for t in m.caffe_blobs()]
            for e, m in net.named_layers() if list(m.caffe_blobs())}


def output(net: Net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net({"data": x})[1]["out"]
