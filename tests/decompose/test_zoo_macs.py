"""Must-shows on the zoo nets' real shapes (224×224): accnn's VGG-16 rank config gives a 2.42x
conv-only speedup, and ``--ratio 2``/``3`` lands within 5% of the target on VGG-16 and ResNet-50,
counted by prunekit flops' rule on the rewritten, rebuilt nets.

Weights are not needed for MACs: the nets keep their (zero) fillers, and the rank search gets a
stand-in spectrum E(r) = 1 − 0.97^r (the real singular values only change which ranks win, not
the accounting; benchmarks/decompose_speedup.py runs the real SVDs). VGG-16 is cut after pool5:
its FC layers hold 90% of the weights and no conv MACs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from prunekit import caffe
from prunekit.decompose.auto import auto_ranks
from prunekit.decompose.candidates import find_candidates
from prunekit.decompose.plan import check_ranks
from prunekit.decompose.rewrite import rewrite_net
from prunekit.measure.flops import count_net, totals
from prunekit.net.batch_size import with_batch_size
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST

ZOO = Path(__file__).resolve().parents[2] / "compression_experiments"
ACCNN_VGG16 = {"conv1_1": 5, "conv1_2": 32, "conv2_1": 64, "conv2_2": 64, "conv3_1": 96,
               "conv3_2": 160, "conv3_3": 192, "conv4_1": 256, "conv4_2": 256, "conv4_3": 320,
               "conv5_1": 384, "conv5_2": 384, "conv5_3": 384}


@pytest.fixture(scope="module")
def nets():
    out = {}
    for model in ("vgg16", "resnet50"):
        param = with_batch_size(caffe.read_net_prototxt(ZOO / model / "deploy.prototxt"), 1)
        if model == "vgg16":
            keep = [lp.name for lp in param.layer].index("pool5") + 1
            del param.layer[keep:]
        out[model] = (param, Net(param, TEST))
    return out


def conv_speedup(param, net, ranks) -> float:
    geometry = {n: net.layer(n).geometry for n in ranks}
    new = Net(rewrite_net(param, ranks, geometry), TEST)
    return totals(count_net(net, dense=True)).conv_macs / totals(count_net(new, dense=True)).conv_macs


def test_accnn_vgg16_config_is_2_42x(nets):
    param, net = nets["vgg16"]
    ranks = check_ranks(net, {n: ("conv", k) for n, k in ACCNN_VGG16.items()}, "accnn")
    assert round(conv_speedup(param, net, ranks), 2) == 2.42


@pytest.mark.parametrize("model,search", [("vgg16", "dp"), ("resnet50", "greedy")])
def test_ratio_lands_within_5_percent(nets, model, search):
    param, net = nets[model]
    energies = {c.name: [1 - 0.97 ** r for r in range(1, c.useful_rank + 1)]
                for c in find_candidates(net, False)}
    for ratio in (2, 3):
        ranks = auto_ranks(net, ratio, search=search, energies=energies)
        assert ratio <= conv_speedup(param, net, ranks) <= ratio * 1.05
