"""GetPruneProgress: MAC and parameter bases of the shipped nets (reference 2.8) and the ratios."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from prunekit import caffe
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.prune.increg.progress import (
    PrunedRatios,
    layer_costs,
    prune_progress,
    pruned_ratio_for_comparison,
)

REPO = Path(__file__).resolve().parents[2]
ZOO = REPO / "compression_experiments"

INPUT = """
layer { name: "data" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } shape { dim: 1 } } }
"""


def build(param) -> Net:
    with torch.device("meta"):  # shapes only: no weight memory, no filler time
        return Net(param, 0)


@pytest.fixture(scope="module")
def lenet_costs():
    """lenet5's train_val layers with the LMDB Data layers replaced by a 1x28x28 Input."""
    shipped = caffe.read_net_prototxt(ZOO / "lenet5" / "train_val.prototxt")
    param = caffe.parse_net_text(INPUT, "input")
    param.name = shipped.name
    param.layer.extend(lp for lp in shipped.layer if lp.type != "Data")
    return layer_costs(build(param))


def zoo_costs(model: str):
    param = with_batch_size(caffe.read_net_prototxt(ZOO / model / "deploy.prototxt"), 1)
    return layer_costs(build(param))


def test_lenet_bases(lenet_costs):
    assert [(c.index, c.name, c.type) for c in lenet_costs] == [
        (0, "conv1", "Convolution"), (1, "conv2", "Convolution"),
        (2, "ip1", "InnerProduct"), (3, "ip2", "InnerProduct")]
    assert [c.macs for c in lenet_costs] == [288_000, 1_600_000, 400_000, 5_000]
    assert [c.num_param for c in lenet_costs] == [500, 25_000, 400_000, 5_000]
    assert [(c.num_row, c.num_col) for c in lenet_costs] == [
        (20, 25), (50, 500), (500, 800), (10, 500)]
    assert lenet_costs[1].weight_shape == (50, 20, 5, 5)
    p = prune_progress(lenet_costs, [PrunedRatios()] * 4)
    assert (p.speedup, p.comp_ratio) == (1.0, 1.0)
    assert (p.macs_origin, p.num_param_origin) == (1_888_000, 405_000)
    p = prune_progress(lenet_costs, [PrunedRatios()] * 4, speedup_count_fc=True,
                       compr_count_conv=True)
    assert (p.macs_origin, p.num_param_origin) == (2_293_000, 430_500)


def test_lenet_speedup_and_comp_ratio(lenet_costs):
    ratios = [PrunedRatios(col=0.92, row=0.15), PrunedRatios(col=0.9),
              PrunedRatios(col=0.5), PrunedRatios()]
    p = prune_progress(lenet_costs, ratios)
    left = 288_000 * 0.08 * 0.85 + 1_600_000 * 0.1
    assert p.speedup == pytest.approx(1_888_000 / left)
    assert p.macs_left == pytest.approx(left)
    assert p.comp_ratio == pytest.approx(405_000 / (200_000 + 5_000))
    with_fc = prune_progress(lenet_costs, ratios, speedup_count_fc=True)
    assert with_fc.speedup == pytest.approx(2_293_000 / (left + 200_000 + 5_000))
    with_conv = prune_progress(lenet_costs, ratios, compr_count_conv=True)
    kept = 500 * (1 - 0.932) + 25_000 * 0.1 + 200_000 + 5_000
    assert with_conv.comp_ratio == pytest.approx(430_500 / kept)


def test_ratios():
    r = PrunedRatios(col=0.92, row=0.15)
    assert r.combined == pytest.approx(0.932)
    assert pruned_ratio_for_comparison("Col", r) == 0.92
    assert pruned_ratio_for_comparison("Row", r) == 0.15
    with pytest.raises(ValueError):
        pruned_ratio_for_comparison("Weight", r)


def test_from_counts_fractional(lenet_costs):
    r = PrunedRatios.from_counts(lenet_costs[1], 62.5, 5)
    assert (r.col, r.row) == (0.125, 0.1)


def test_empty_sums_nan_and_full_pruning_inf(lenet_costs):
    convs = lenet_costs[:2]
    p = prune_progress(convs, [PrunedRatios()] * 2)
    assert p.speedup == 1.0 and math.isnan(p.comp_ratio)
    p = prune_progress(lenet_costs[2:], [PrunedRatios()] * 2)
    assert math.isnan(p.speedup) and p.comp_ratio == 1.0
    p = prune_progress(convs, [PrunedRatios(col=1.0)] * 2)
    assert p.speedup == math.inf
    with pytest.raises(ValueError):
        prune_progress(convs, [PrunedRatios()])


def test_vgg16_deploy():
    costs = zoo_costs("vgg16")
    assert len(costs) == 16
    assert sum(c.macs for c in costs if c.is_conv) == 15_346_630_656
    assert sum(c.macs for c in costs if not c.is_conv) == 123_633_664
    assert sum(c.num_param for c in costs if c.is_conv) == 14_710_464
    assert prune_progress(costs, [PrunedRatios()] * 16).num_param_origin == 123_633_664


def test_resnet50_deploy():
    costs = zoo_costs("resnet50")
    assert len(costs) == 54 and sum(c.is_conv for c in costs) == 53
    assert sum(c.macs for c in costs if c.is_conv) == 3_855_925_248
    assert sum(c.macs for c in costs if not c.is_conv) == 2_048_000
    assert sum(c.num_param for c in costs if c.is_conv) == 23_454_912
    assert (costs[0].name, costs[0].num_col) == ("conv1", 147)


def test_grouped_multi_top_conv_and_transposed_fc():
    param = caffe.parse_net_text("""
    layer { name: "in" type: "Input" top: "a" top: "b"
            input_param { shape { dim: 1 dim: 4 dim: 6 dim: 6 } shape { dim: 1 dim: 4 dim: 6 dim: 6 } } }
    layer { name: "c" type: "Convolution" bottom: "a" bottom: "b" top: "ca" top: "cb"
            convolution_param { num_output: 6 kernel_size: 3 group: 2 } }
    layer { name: "fc" type: "InnerProduct" bottom: "ca" top: "fc"
            inner_product_param { num_output: 5 transpose: true } }
    """)
    conv, fc = layer_costs(build(param))
    assert (conv.weight_shape, conv.num_row, conv.num_col, conv.group) == ((6, 2, 3, 3), 6, 18, 2)
    assert conv.macs == 108 * (16 + 16)  # each top is one application of the weights
    assert (fc.weight_shape, fc.num_row, fc.num_col, fc.macs) == ((96, 5), 5, 96, 480)
