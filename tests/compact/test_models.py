"""Masked vs compacted on real architectures with random weights and random 50% filter masks:
VGG-16 and ResNet-50 (the repository's deploy prototxts at 224×224, batch 1), an Inception-style
net with Concat, grouped and depthwise convs and an LRN, and LeNet-5 with zero kernel columns.
Outputs are the logits (the final Softmax dropped) and must agree to 1e-4 of their scale."""

from __future__ import annotations

import torch

from _compact_helpers import (EXP, build, compact_and_compare, conv_channels, half, load_param,
                              randomise, zero_filters)
from prunekit.compact.report import layer_lines
from prunekit.measure.flops import count_net, totals

TOLERANCE = 1e-4


def test_vgg16_half_of_every_filter_bank_masked() -> None:
    param = load_param(EXP / "vgg16" / "deploy.prototxt", drop=("prob",))
    net = build(param)
    gen = randomise(net, seed=0)   # biases ~ N(0, 0.1): half the zeroed filters leave relu(b) > 0
    before = conv_channels(net)
    for name, shape in before.items():
        if name != "fc8":
            zero_filters(net, name, half(shape[0], gen))
    result, small, worst = compact_and_compare(param, net)
    assert worst <= TOLERANCE
    after = conv_channels(small)
    for name, shape in before.items():
        if name.startswith("conv"):
            # the live half stays, plus at most one carrier for the next padded conv
            assert shape[0] // 2 <= after[name][0] <= shape[0] // 2 + 1, name
    assert after["conv5_3"][0] == 256                   # fc6 has a bias: no carrier needed
    assert after["fc6"] == (2048, 256 * 7 * 7) and after["fc7"] == (2048, 2048)
    assert after["fc8"] == (1000, 2048)                 # the output keeps all classes
    masked, compacted = totals(count_net(net)), totals(count_net(small, dense=True))
    assert masked.conv_speedup == 2.0                   # the masked count skips zero filters only
    # compaction also drops the consumers' input channels: more than the theoretical 2x
    assert masked.conv_macs / compacted.conv_macs > 3.8
    assert compacted.params < 0.27 * masked.params
    carriers = [name for name, change in result.weights.changes.items()
                if any("carrier" in note for note in change.notes)]
    assert carriers and all(n.startswith("conv") for n in carriers)


def _resnet_masks(net, gen) -> dict[str, torch.Tensor]:
    """Half the filters of every branch2a/branch2b, and per stage half of the channels of the
    residual path: the same rows zeroed in branch1 and in every branch2c of the stage."""
    convs = [e.name for e, _ in net.named_layers() if e.type == "Convolution"]
    coupled = {}
    for name in convs:
        if name.endswith(("branch2a", "branch2b")):
            zero_filters(net, name, half(net.layer(name).weight.shape[0], gen))
    for stage in "2345":
        producers = [n for n in convs if n.startswith(f"res{stage}")
                     and n.endswith(("branch1", "branch2c"))]
        rows = half(net.layer(producers[0]).weight.shape[0], gen)
        for name in producers:
            zero_filters(net, name, rows)
        coupled[stage] = rows
    return coupled


def test_resnet50_eltwise_coupling_and_batchnorm_shifts() -> None:
    param = load_param(EXP / "resnet50" / "deploy.prototxt", drop=("prob",))
    net = build(param)
    gen = randomise(net, seed=1)
    coupled = _resnet_masks(net, gen)
    # the removed channels really are non-zero constants (BatchNorm + Scale shift of a zero filter)
    bn, sc = net.layer("bn2a_branch2c"), net.layer("scale2a_branch2c")
    mean, var = bn.global_stats()
    rows = coupled["2"]
    shift = (sc.bias - sc.scale * mean / torch.sqrt(var + bn.eps)).detach()[rows]
    assert float(shift.abs().min()) > 0
    result, small, worst = compact_and_compare(param, net)
    assert worst <= TOLERANCE
    after = conv_channels(small)
    # stage 2: 256 residual channels, half removed together everywhere in the stage
    assert after["res2a_branch1"] == (128, 64, 1, 1)
    assert after["res2c_branch2c"][0] == 128 and after["res3a_branch1"][1] == 128
    assert after["res5c_branch2c"][0] == 1024 and after["fc1000"] == (1000, 1024)
    # branch2a keeps its live half plus one carrier for the padded 3x3 branch2b
    assert after["res2a_branch2a"][0] == 33 and after["res2a_branch2b"] == (32, 33, 3, 3)
    changes = result.weights.changes
    assert any("mean shifted" in note for note in changes["bn2b_branch2a"].notes)
    assert small.layer("bn2a_branch1").mean.shape == (128,)
    masked, compacted = totals(count_net(net)), totals(count_net(small, dense=True))
    assert masked.conv_macs / compacted.conv_macs > masked.conv_speedup > 1.8


INCEPTION = """
name: "mini_inception"
input: "data" input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "stem" type: "Convolution" bottom: "data" top: "stem"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1 } }
layer { name: "stem_bn" type: "BatchNorm" bottom: "stem" top: "stem" }
layer { name: "stem_scale" type: "Scale" bottom: "stem" top: "stem"
  scale_param { bias_term: true } }
layer { name: "stem_relu" type: "ReLU" bottom: "stem" top: "stem" }
layer { name: "a_1x1" type: "Convolution" bottom: "stem" top: "a_1x1"
  convolution_param { num_output: 8 kernel_size: 1 } }
layer { name: "a_relu" type: "ReLU" bottom: "a_1x1" top: "a_1x1" }
layer { name: "b_reduce" type: "Convolution" bottom: "stem" top: "b_reduce"
  convolution_param { num_output: 8 kernel_size: 1 } }
layer { name: "b_relu" type: "ReLU" bottom: "b_reduce" top: "b_reduce" }
layer { name: "b_3x3" type: "Convolution" bottom: "b_reduce" top: "b_3x3"
  convolution_param { num_output: 12 kernel_size: 3 pad: 1 group: 2 } }
layer { name: "b_relu2" type: "ReLU" bottom: "b_3x3" top: "b_3x3" }
layer { name: "c_pool" type: "Pooling" bottom: "stem" top: "c_pool"
  pooling_param { pool: MAX kernel_size: 3 stride: 1 pad: 1 } }
layer { name: "c_proj" type: "Convolution" bottom: "c_pool" top: "c_proj"
  convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "d_dw" type: "Convolution" bottom: "stem" top: "d_dw"
  convolution_param { num_output: 16 kernel_size: 3 pad: 1 group: 16 } }
layer { name: "d_pw" type: "Convolution" bottom: "d_dw" top: "d_pw"
  convolution_param { num_output: 10 kernel_size: 1 } }
layer { name: "e_1x1" type: "Convolution" bottom: "stem" top: "e_1x1"
  convolution_param { num_output: 6 kernel_size: 1 } }
layer { name: "e_lrn" type: "LRN" bottom: "e_1x1" top: "e_lrn"
  lrn_param { local_size: 3 alpha: 0.1 beta: 0.75 } }
layer { name: "mixed" type: "Concat" bottom: "a_1x1" bottom: "b_3x3" bottom: "c_proj"
  bottom: "d_pw" bottom: "e_lrn" top: "mixed" }
layer { name: "mix_1x1" type: "Convolution" bottom: "mixed" top: "mix_1x1"
  convolution_param { num_output: 20 kernel_size: 1 } }
layer { name: "mix_relu" type: "ReLU" bottom: "mix_1x1" top: "mix_1x1" }
layer { name: "gap" type: "Pooling" bottom: "mix_1x1" top: "gap"
  pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "gap" top: "fc"
  inner_product_param { num_output: 10 } }
"""


def test_inception_concat_groups_depthwise_and_lrn() -> None:
    param = load_param(INCEPTION)
    net = build(param)
    randomise(net, seed=2, bias_std=0.3)
    zero_filters(net, "stem", [1, 4, 6, 9, 11, 13, 14, 15])
    with torch.no_grad():   # stem 1, 4, 6, 9 become relu(negative) = 0; 11, 13, 14, 15 stay > 0
        net.layer("stem_scale").bias[[1, 4, 6, 9]] = -5.0
        net.layer("stem_scale").bias[[11, 13, 14, 15]] = 5.0
    zero_filters(net, "a_1x1", [0, 2, 5, 7])
    zero_filters(net, "b_reduce", [0, 3, 4, 5])         # group 0 (0-3) loses 2, group 1 loses 2
    zero_filters(net, "b_3x3", [0, 1, 2, 6, 7, 8])       # 3 of 6 per group
    zero_filters(net, "c_proj", [1, 4, 5])
    zero_filters(net, "d_pw", [0, 2, 4, 6, 8])
    zero_filters(net, "e_1x1", [0, 1, 2])                # behind LRN ACROSS_CHANNELS: they stay
    zero_filters(net, "mix_1x1", list(range(0, 20, 2)))
    result, small, worst = compact_and_compare(param, net)
    assert worst <= TOLERANCE
    after = conv_channels(small)
    # the depthwise conv loses the groups whose stem channel went (a removed channel takes its
    # group along); a stem constant > 0 cannot go: the padded depthwise conv would turn it into
    # a map that differs at the borders, which no bias can hold
    assert after["stem"][0] == 12
    assert small.layer("d_dw").group == after["d_dw"][0] == 12 and after["d_dw"][1:] == (1, 3, 3)
    assert small.layer("b_3x3").group == 2 and after["b_3x3"][0] == 6
    assert after["e_1x1"][0] == 6                       # LRN across channels keeps them
    report = "\n".join(layer_lines(result, count_net(net), count_net(small, dense=True)))
    assert "3 constant filter(s) kept: read by 'e_lrn' (LRN): LRN ACROSS_CHANNELS" in report
    assert "4 constant filter(s) kept: equal input channels per group in 'd_dw'" in report
    # Concat offsets: mix_1x1 reads the kept channels of every branch, in order
    widths = [after[n][0] for n in ("a_1x1", "b_3x3", "c_proj", "d_pw")] + [6]
    assert after["mix_1x1"] == (10, sum(widths), 1, 1)
    assert after["fc"] == (10, 10)


LENET_INPUT = 'name: "lenet_in" input: "data" input_shape { dim: 1 dim: 1 dim: 28 dim: 28 }'


def lenet5_input_variant(conv1_pad: int = 2):
    """compression_experiments/lenet5/train_val.prototxt as a deploy net: an Input layer
    instead of the LMDB layers, no loss/accuracy, and conv1 padded by 2 (LeCun's LeNet-5 reads
    32×32 images: MNIST's 28×28 padded by 2), so that its zero kernel columns can go."""
    param = load_param(EXP / "lenet5" / "train_val.prototxt",
                       drop=("mnist", "accuracy", "loss"))
    deploy = load_param(LENET_INPUT)
    deploy.layer.extend(param.layer)
    deploy.layer[0].convolution_param.pad.append(conv1_pad)
    return deploy


def test_lenet5_zero_kernel_columns_shrink_the_kernel() -> None:
    param = lenet5_input_variant()
    net = build(param)
    gen = randomise(net, seed=3)
    with torch.no_grad():
        w1 = net.layer("conv1").weight
        w1[:, :, :, [0, 4]] = 0             # outer kernel columns of every filter: 5x5 -> 5x3
        w1[:, :, 4, :] = 0                  # and the last row: alone it cannot go (symmetric pad)
        net.layer("conv2").weight[:, :, :, 2:] = 0  # pad 0: 5x5 -> 5x2 reading a crop
    zero_filters(net, "conv1", half(20, gen))
    zero_filters(net, "conv2", half(50, gen))
    result, small, worst = compact_and_compare(param, net)
    assert worst <= TOLERANCE
    conv1 = result.weights.changes["conv1"]
    assert conv1.kernel == (5, 3) and conv1.pad == (2, 1)
    assert small.layer("conv1").weight.shape[2:] == (5, 3)
    assert any("rows [4] stay" in note for note in conv1.notes)
    conv2 = result.weights.changes["conv2"]
    assert conv2.kernel == (5, 2) and conv2.pad == (0, 0)
    assert conv2.crop == (None, (0, 11)) and conv2.input_size == (14, 14)
    crop = next(lp for lp in result.net_param.layer if lp.name == "conv2_crop_w")
    assert (crop.type, crop.slice_param.axis, list(crop.slice_param.slice_point)) == \
        ("Slice", 3, [11])
    names = [lp.name for lp in result.net_param.layer]
    assert names.index("conv2_crop_w") < names.index("conv2_crop_w_unused") < names.index("conv2")
    assert next(lp for lp in result.net_param.layer if lp.name == "conv2").bottom[0] == \
        "conv2_crop_w_0"
    cp = next(lp for lp in result.net_param.layer if lp.name == "conv1").convolution_param
    assert (cp.kernel_h, cp.kernel_w, cp.pad_h, cp.pad_w) == (5, 3, 2, 1)
    assert not cp.kernel_size and not cp.pad
    rows = {r.name: r for r in count_net(small, dense=True)}
    assert rows["conv1"].macs == 10 * 1 * 5 * 3 * 28 * 28
