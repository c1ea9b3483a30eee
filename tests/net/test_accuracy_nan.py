"""A diverged net (NaN scores) must not report 100% accuracy, as Caffe's comparisons would."""

import torch

from prunekit.caffe import parse_net_text
from prunekit.net.layers.accuracy import Accuracy


def _layer(top_k: int = 1) -> Accuracy:
    net = parse_net_text(f'layer {{ name: "acc" type: "Accuracy" bottom: "s" bottom: "l" top: "a" '
                         f'accuracy_param {{ top_k: {top_k} }} }}')
    return Accuracy(net.layer[0], [(4, 3), (4,)], 1)


def test_nan_rows_count_as_wrong() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.0], [float("nan")] * 3, [0.8, 0.1, 0.1],
                           [0.2, float("nan"), 0.1]])
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert _layer()(scores, labels).item() == 0.5


def test_all_nan_scores_give_zero() -> None:
    scores = torch.full((4, 3), float("nan"))
    assert _layer(top_k=2)(scores, torch.zeros(4)).item() == 0.0
