"""`prunekit flops`: MAC and parameter counts against hand computations, dense and pruned."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunekit import caffe
from prunekit.measure.flops import count_net, totals
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST

REPO = Path(__file__).resolve().parents[2]
EXP = REPO / "compression_experiments"


def _net(text_or_path, dense_input=None) -> Net:
    if isinstance(text_or_path, Path):
        param = caffe.read_net_prototxt(text_or_path)
    else:
        param = caffe.parse_net_text(text_or_path)
    return Net(param, TEST)


def _vgg16_conv_macs() -> int:
    """Σ 3·3·C_in·C_out·H·W over VGG-16's 13 convs at 224x224 input."""
    plan = [(3, 64, 224), (64, 64, 224), (64, 128, 112), (128, 128, 112), (128, 256, 56),
            (256, 256, 56), (256, 256, 56), (256, 512, 28), (512, 512, 28), (512, 512, 28),
            (512, 512, 14), (512, 512, 14), (512, 512, 14)]
    return sum(9 * cin * cout * hw * hw for cin, cout, hw in plan)


def _resnet50_conv_macs() -> int:
    """conv1 7x7/2 to 112², then bottlenecks (1x1, 3x3, 1x1 ×4) at 56/28/14/7 with a 1x1
    projection in each stage's first block; the stride sits in the 1x1 of branch2a (Caffe's
    ResNet-50), so a stage's first 1x1 already runs at the stage's output size."""
    total = 7 * 7 * 3 * 64 * 112 * 112
    cin = 64
    for blocks, width, hw in ((3, 64, 56), (4, 128, 28), (6, 256, 14), (3, 512, 7)):
        for b in range(blocks):
            total += cin * width * hw * hw            # branch2a 1x1
            total += 9 * width * width * hw * hw      # branch2b 3x3
            total += width * 4 * width * hw * hw      # branch2c 1x1
            if b == 0:
                total += cin * 4 * width * hw * hw    # branch1 projection
            cin = 4 * width
    return total


def test_vgg16_conv_macs_match_the_hand_count() -> None:
    t = totals(count_net(_net(EXP / "vgg16" / "deploy.prototxt"), dense=True))
    assert t.conv_macs == _vgg16_conv_macs() == 15_346_630_656
    assert t.params == 138_357_544 and t.conv_speedup == 1.0


def test_resnet50_conv_macs_match_the_hand_count() -> None:
    t = totals(count_net(_net(EXP / "resnet50" / "deploy.prototxt"), dense=True))
    assert t.conv_macs == _resnet50_conv_macs()


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


def test_pruned_rows_and_columns_are_skipped(tmp_path: Path) -> None:
    net = _net(LENET)
    w1 = net.layer("conv1").weight.data
    w2 = net.layer("conv2").weight.data
    w1.view(20, 25)[:, :20] = 0        # 20 of 25 columns
    w1[:4] = 0                          # and 4 of 20 filters
    w2.view(50, 500)[:, 100:] = 0      # 400 of 500 columns
    net.layer("ip1").weight.data[:, :300] = 0
    rows = {r.name: r for r in count_net(net)}
    assert rows["conv1"].macs == 500 * 24 * 24
    assert rows["conv1"].macs_left == 16 * 5 * 24 * 24
    assert rows["conv2"].macs_left == 50 * 100 * 8 * 8
    assert rows["ip1"].macs == 500 * 3200 and rows["ip1"].macs_left == 500 * 2900
    assert rows["conv1"].params == 520 and rows["conv1"].nonzero_params == 16 * 5  # bias is 0
    t = totals(list(rows.values()))
    assert t.conv_speedup == pytest.approx((500 * 576 + 25000 * 64) / (80 * 576 + 5000 * 64))


def test_grouped_conv_counts_per_group() -> None:
    text = """
    input: "data" input_shape { dim: 1 dim: 4 dim: 6 dim: 6 }
    layer { name: "c" type: "Convolution" bottom: "data" top: "c"
      convolution_param { num_output: 6 kernel_size: 3 group: 2 bias_term: false
                          weight_filler { type: "constant" value: 1 } } }
    """
    net = _net(text)
    w = net.layer("c").weight.data   # [6, 2, 3, 3]: group 0 = filters 0-2, group 1 = 3-5
    w[0] = 0                          # one filter of group 0
    w[3:, 1] = 0                      # channel 1 of group 1 (9 columns)
    row = {r.name: r for r in count_net(net)}["c"]
    # group 0: 2 filters x 18 columns; group 1: 3 filters x 9 columns; output 4x4
    assert row.macs == 6 * 18 * 16 and row.macs_left == (2 * 18 + 3 * 9) * 16


def test_per_element_layers_follow_the_documented_rules() -> None:
    text = """
    input: "data" input_shape { dim: 1 dim: 8 dim: 4 dim: 4 }
    layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
    layer { name: "sc" type: "Scale" bottom: "bn" top: "sc" scale_param { bias_term: true } }
    layer { name: "sum" type: "Eltwise" bottom: "sc" bottom: "data" top: "sum" }
    layer { name: "wsum" type: "Eltwise" bottom: "sc" bottom: "data" top: "wsum"
      eltwise_param { coeff: 1 coeff: -1 } }
    layer { name: "max" type: "Eltwise" bottom: "sc" bottom: "data" top: "max"
      eltwise_param { operation: MAX } }
    layer { name: "ave" type: "Pooling" bottom: "sum" top: "ave"
      pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
    layer { name: "mp" type: "Pooling" bottom: "sum" top: "mp"
      pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layer { name: "relu" type: "ReLU" bottom: "wsum" top: "wsum" }
    """
    rows = {r.name: r for r in count_net(_net(text), dense=True)}
    n = 8 * 4 * 4
    assert rows["bn"].macs == n and rows["sc"].macs == n
    assert rows["sum"].macs == n and rows["wsum"].macs == 2 * n and rows["max"].macs == 0
    assert rows["ave"].macs == 4 * (8 * 2 * 2) and rows["mp"].macs == 0
    assert rows["relu"].macs == 0
    assert rows["bn"].params == 0      # running statistics are not parameters
    assert rows["sc"].params == 16
