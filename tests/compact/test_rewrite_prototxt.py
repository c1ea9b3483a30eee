"""The emitted files: the prototxt differs from the input only in num_output / kernel / pad,
in every phase; the caffemodel holds every layer, loads into both phases and reproduces the
masked outputs after a round trip through disk."""

from __future__ import annotations

from pathlib import Path

import torch

from _compact_helpers import load_param, randomise, zero_filters
from prunekit import caffe
from prunekit.compact import build_compacted, compact
from prunekit.compact.save import compacted_blobs, save_blobs
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import load_caffemodel

TRAIN_VAL = """
name: "tv"
layer { name: "data" type: "DummyData" top: "data" top: "label" include { phase: TRAIN }
  dummy_data_param { shape { dim: 4 dim: 3 dim: 12 dim: 12 } shape { dim: 4 }
                     data_filler { type: "gaussian" } } }
layer { name: "data" type: "DummyData" top: "data" top: "label" include { phase: TEST }
  dummy_data_param { shape { dim: 2 dim: 3 dim: 12 dim: 12 } shape { dim: 2 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 } param { lr_mult: 2 }
  prune_param { prune_ratio: 0.5 prune_ratio_step: 0.25 }
  convolution_param { num_output: 8 kernel_size: 5 pad: 2 weight_filler { type: "xavier" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "drop" type: "Dropout" bottom: "conv1" top: "conv1" include { phase: TRAIN } }
layer { name: "aux" type: "Scale" bottom: "data" top: "aux" include { phase: TRAIN } }
layer { name: "conv2" type: "Convolution" bottom: "conv1" top: "conv2"
  param { lr_mult: 1 } param { lr_mult: 2 } prune_param { prune_ratio: 0.5 }
  convolution_param { num_output: 6 kernel_size: 3 weight_filler { type: "msra" } } }
layer { name: "ip" type: "InnerProduct" bottom: "conv2" top: "ip"
  inner_product_param { num_output: 5 } }
layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc"
  include { phase: TEST } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""

CHANGED = {"Convolution": ("num_output", "kernel_size", "pad", "kernel_h", "kernel_w", "pad_h",
                           "pad_w"),
           "InnerProduct": ("num_output",)}


def _masked():
    param = load_param(TRAIN_VAL)
    net = Net(param, TEST)
    randomise(net, seed=6)
    with torch.no_grad():
        net.layer("conv1").weight[:, :, :, [0, 4]] = 0   # 5x5 -> 5x3 with pad_w 1
    zero_filters(net, "conv1", [1, 2, 5])
    zero_filters(net, "conv2", [0, 3])
    return param, net


def _without_changed_fields(param):
    out = type(param)()
    out.CopyFrom(param)
    for layer in out.layer:
        sub = {"Convolution": "convolution_param",
               "InnerProduct": "inner_product_param"}.get(layer.type)
        for name in CHANGED.get(layer.type, ()):
            getattr(layer, sub).ClearField(name)
    return out


def test_only_channel_and_kernel_fields_change() -> None:
    param, net = _masked()
    result = compact(param, net)
    conv1 = next(lp for lp in result.net_param.layer if lp.name == "conv1").convolution_param
    assert (conv1.num_output, conv1.kernel_h, conv1.kernel_w, conv1.pad_h, conv1.pad_w) == \
        (5, 5, 3, 2, 1)
    assert _without_changed_fields(result.net_param) == _without_changed_fields(param)
    assert [lp.name for lp in result.net_param.layer] == [lp.name for lp in param.layer]
    assert result.net_param.layer[2].prune_param.prune_ratio_step == 0.25


def test_files_round_trip_and_load_in_both_phases(tmp_path: Path) -> None:
    param, net = _masked()
    original = {"aux": [torch.full((3,), 0.5).numpy()]}
    original.update({e.name: [t.detach().numpy() for t in m.caffe_blobs()]
                     for e, m in net.named_layers() if m.caffe_blobs()})
    result = compact(param, net)
    caffe.write_prototxt(tmp_path / "c.prototxt", result.net_param)
    save_blobs(tmp_path / "c.caffemodel", result.net_param, compacted_blobs(result, original))
    reread = caffe.read_net_prototxt(tmp_path / "c.prototxt")
    assert reread == result.net_param
    blobs = caffe.layer_blobs(caffe.read_caffemodel(tmp_path / "c.caffemodel"))
    assert list(blobs) == ["data", "conv1", "relu1", "drop", "aux", "conv2", "ip", "acc", "loss"]
    assert blobs["aux"][0].tolist() == [0.5, 0.5, 0.5]            # the TRAIN-only layer's blobs
    assert blobs["conv1"][0].shape == (5, 3, 5, 3) and blobs["ip"][0].shape == (5, 4 * 10 * 10)
    train = Net(reread, TRAIN)
    load_caffemodel(train, tmp_path / "c.caffemodel")             # shapes check out in TRAIN
    test = Net(reread, TEST)
    load_caffemodel(test, tmp_path / "c.caffemodel")
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(3))
    label = torch.zeros(2)
    a = net({"data": x, "label": label})[1]
    b = test({"data": x, "label": label})[1]
    assert set(a) == {"acc", "loss"}
    torch.testing.assert_close(a["loss"], b["loss"])
    small = build_compacted(result, TEST)
    assert small.layer("conv1").weight.shape == (5, 3, 5, 3)
