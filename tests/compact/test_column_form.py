"""compact.column_form: a column-masked Convolution rewritten as a ColumnConvolution computes the
same outputs (groups, dilation, stride, non-square kernel), and its kept set is exactly the
columns non-zero in some filter of some group."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from google.protobuf import text_format

from prunekit.caffe import caffe_pb2
from prunekit.compact.column_form import column_blobs, column_layer_param, kept_columns
from prunekit.net.layers.base import TEST
from prunekit.net.registry import layer_class

CONV = """name: "c" type: "Convolution" bottom: "x" top: "y"
  convolution_param { num_output: 6 kernel_h: 3 kernel_w: 5 stride: 2 pad: 1 dilation: 2
                      group: 2 }"""


def test_column_form_of_a_masked_conv():
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((6, 2, 3, 5)).astype(np.float32)      # 2·3·5 = 30 columns
    zero = [0, 3, 4, 17, 29]
    flat = weight.reshape(6, 30)
    flat[:, zero] = 0
    flat[4, 7] = 0                  # zero in one filter only: the column stays
    bias = rng.standard_normal(6).astype(np.float32)
    kept = kept_columns(weight, 2)
    assert kept.tolist() == [c for c in range(30) if c not in zero]
    conv = text_format.Parse(CONV, caffe_pb2.LayerParameter())
    lp = column_layer_param(conv, kept)
    assert lp.type == "ColumnConvolution" and conv.type == "Convolution"
    assert lp.convolution_param == conv.convolution_param
    layer = layer_class(lp.type, lp.name)(lp, [(2, 4, 13, 15)], TEST)
    blobs = column_blobs([weight, bias], kept)
    assert blobs[0].shape == (6, 25)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(blobs[0]))
        layer.bias.copy_(torch.from_numpy(blobs[1]))
    x = torch.from_numpy(rng.standard_normal((2, 4, 13, 15)).astype(np.float32))
    ref = F.conv2d(x, torch.from_numpy(weight), torch.from_numpy(bias), stride=2, padding=1,
                   dilation=2, groups=2)
    with torch.no_grad():
        got = layer(x)
    assert float((got - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
