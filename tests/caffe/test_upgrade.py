"""V1 ``layers { }`` nets upgrade to the equivalent ``layer { }`` nets."""

from __future__ import annotations

import numpy as np
import pytest

from prunekit.caffe import (
    array_to_blob,
    caffe_pb2,
    layer_blobs,
    parse_net_text,
    read_caffemodel,
    read_net_prototxt,
    to_text,
    write_caffemodel,
)
from prunekit.errors import PrunekitError

V1_NET = """
name: "V1Net"
layers {
  name: "mnist" type: DATA top: "data" top: "label"
  data_param { source: "mnist_lmdb" backend: LMDB batch_size: 64 scale: 0.00390625 mirror: true }
  include { phase: TRAIN }
}
layers {
  name: "conv1" type: CONVOLUTION bottom: "data" top: "conv1"
  blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
  param: "w1" param: "b1"
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } }
}
layers { name: "pool1" type: POOLING bottom: "conv1" top: "pool1"
         pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layers { name: "ip1" type: INNER_PRODUCT bottom: "pool1" top: "ip1"
         inner_product_param { num_output: 10 } }
layers { name: "relu1" type: RELU bottom: "ip1" top: "ip1" }
layers { name: "drop" type: DROPOUT bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }
layers { name: "acc" type: ACCURACY bottom: "ip1" bottom: "label" top: "acc"
         exclude { phase: TRAIN } }
layers { name: "loss" type: SOFTMAX_LOSS bottom: "ip1" bottom: "label" top: "loss"
         loss_weight: 1 }
"""

V2_NET = """
name: "V1Net"
layer {
  name: "mnist" type: "Data" top: "data" top: "label"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 mirror: true }
  data_param { source: "mnist_lmdb" backend: LMDB batch_size: 64 }
}
layer {
  name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { name: "w1" lr_mult: 1 decay_mult: 1 }
  param { name: "b1" lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 20 kernel_size: 5 weight_filler { type: "xavier" } }
}
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool1" top: "ip1"
        inner_product_param { num_output: 10 } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "drop" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.3 } }
layer { name: "acc" type: "Accuracy" bottom: "ip1" bottom: "label" top: "acc"
        exclude { phase: TRAIN } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss"
        loss_weight: 1 }
"""


def test_v1_text_upgrades_to_equivalent_v2(tmp_path):
    path = tmp_path / "v1.prototxt"
    path.write_text(V1_NET)
    upgraded = read_net_prototxt(path)
    expected = parse_net_text(V2_NET)
    assert not upgraded.layers
    assert upgraded == expected, to_text(upgraded)


def test_v1_caffemodel_upgrades_with_blobs(tmp_path):
    net = caffe_pb2.NetParameter(name="old")
    v1 = net.layers.add(name="ip", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    v1.blobs.append(array_to_blob(np.ones((3, 2)), legacy=True))
    v1.blobs.append(array_to_blob(np.arange(3), legacy=True))
    path = tmp_path / "old.caffemodel"
    write_caffemodel(path, net)
    upgraded = read_caffemodel(path)
    assert [(layer.name, layer.type) for layer in upgraded.layer] == [("ip", "InnerProduct")]
    arrays = layer_blobs(upgraded)["ip"]
    assert arrays[0].shape == (1, 1, 3, 2)  # legacy blobs keep their 4-d shape, as in Caffe
    np.testing.assert_array_equal(arrays[1].ravel(), [0, 1, 2])


def test_v1_layer_without_type_names_layer_and_tool(tmp_path):
    path = tmp_path / "odd.prototxt"
    path.write_text('layers { name: "mystery" bottom: "x" top: "y" }\n')
    with pytest.raises(PrunekitError, match=r"odd\.prototxt: layer 'mystery' has V1 type unset.*"
                                            r"upgrade_net_proto_text"):
        read_net_prototxt(path)


def test_v0_layer_is_rejected():
    with pytest.raises(PrunekitError, match=r"layer 'old' is in the pre-V1 \(V0\) format"):
        parse_net_text('layers { name: "old" layer { name: "old" type: "conv" } }', "n.prototxt")


def test_mixed_formats_are_rejected():
    with pytest.raises(PrunekitError, match="both 'layer' and legacy 'layers'"):
        parse_net_text('layer { name: "a" type: "ReLU" }\nlayers { name: "b" type: RELU }')
