"""``propagate_down: false`` stops the gradient at that bottom and nowhere else."""

from __future__ import annotations

import pytest
import torch

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.net.graph import Net
from prunekit.net.layers.base import TRAIN

NET = """
layer { name: "in" type: "Input" top: "x" top: "label"
        input_param { shape { dim: 4 dim: 3 dim: 6 dim: 6 } shape { dim: 4 } } }
layer { name: "conv1" type: "Convolution" bottom: "x" top: "c1"
        convolution_param { num_output: 5 kernel_size: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "relu1" type: "ReLU" bottom: "c1" top: "c1" }
layer { name: "ip1" type: "InnerProduct" bottom: "c1" top: "ip1" PROPAGATE
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip1" bottom: "label" top: "loss" }
"""


def _grads(propagate: str) -> dict[str, torch.Tensor | None]:
    torch.manual_seed(0)
    net = Net(caffe.parse_net_text(NET.replace("PROPAGATE", propagate)), TRAIN, source="n")
    x = torch.randn(4, 3, 6, 6)
    loss, _ = net({"x": x, "label": torch.tensor([0.0, 1.0, 2.0, 1.0])})
    loss.backward()
    return {name: net.layer(name).caffe_blobs()[0].grad for name in ("conv1", "ip1")}


def test_false_stops_the_gradient_to_the_layers_below() -> None:
    open_ = _grads("")
    stopped = _grads("propagate_down: false")
    assert open_["conv1"] is not None and float(open_["conv1"].abs().sum()) > 0
    assert stopped["conv1"] is None or float(stopped["conv1"].abs().sum()) == 0
    # the layer's own parameters still learn, with the same gradient
    assert torch.equal(stopped["ip1"], open_["ip1"])


def test_true_changes_nothing() -> None:
    assert torch.equal(_grads("propagate_down: true")["conv1"], _grads("")["conv1"])


def test_count_must_match_the_bottoms() -> None:
    text = NET.replace("PROPAGATE", "").replace(
        'bottom: "label" top: "loss"', 'bottom: "label" top: "loss" propagate_down: true')
    with pytest.raises(PrunekitError, match=r"layer 'loss'.*1 propagate_down value\(s\) for 2"):
        Net(caffe.parse_net_text(text), TRAIN, source="n")
