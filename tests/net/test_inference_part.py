"""prunekit.net.inference_part: what `prunekit export` keeps of a train_val net."""

from __future__ import annotations

from prunekit import caffe
from prunekit.net.inference_part import inference_part

LAYERS = """
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
"""


def _names(param) -> list[tuple[str, str, list[str], list[str]]]:
    return [(l.name, l.type, list(l.bottom), list(l.top)) for l in param.layer]


def test_a_deploy_net_passes_through_unchanged() -> None:
    text = ('layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 4 } } }'
            + LAYERS + 'layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }')
    param = caffe.parse_net_text(text)
    part = inference_part(param)
    assert part.changes == []
    assert part.net_param.SerializeToString() == param.SerializeToString()


def test_losses_accuracy_and_labels_go_per_top_shapes() -> None:
    text = ('layer { name: "in" type: "Input" top: "data" top: "label" input_param { '
            'shape { dim: 1 dim: 4 } shape { dim: 1 } } }' + LAYERS
            + 'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" }'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" '
            '  softmax_param { axis: 1 } }'
            'layer { name: "l2" type: "EuclideanLoss" bottom: "ip" bottom: "ip" top: "l2" }')
    part = inference_part(caffe.parse_net_text(text))
    assert _names(part.net_param) == [("in", "Input", [], ["data"]),
                                      ("ip", "InnerProduct", ["data"], ["ip"]),
                                      ("prob", "Softmax", ["ip"], ["prob"])]
    assert [list(s.dim) for s in part.net_param.layer[0].input_param.shape] == [[1, 4]]
    assert part.net_param.layer[2].softmax_param.axis == 1
    assert part.changes == ["dropped Accuracy 'acc'", "SoftmaxWithLoss 'loss' -> Softmax 'prob'",
                            "dropped EuclideanLoss 'l2'", "dropped input 'label'"]


def test_shared_input_shape_and_a_taken_prob_name() -> None:
    """One shape for both tops (Caffe repeats it) stays; 'prob' in use -> '<loss>_prob'; an
    Input layer left with no top goes."""
    text = ('layer { name: "in" type: "Input" top: "data" top: "aux" input_param { '
            'shape { dim: 1 dim: 4 } } }'
            'layer { name: "lab" type: "Input" top: "label" input_param { shape { dim: 1 } } }'
            + LAYERS + 'layer { name: "prob" type: "ReLU" bottom: "aux" top: "prob" }'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }')
    part = inference_part(caffe.parse_net_text(text))
    names = _names(part.net_param)
    assert names[0] == ("in", "Input", [], ["data", "aux"])
    assert [list(s.dim) for s in part.net_param.layer[0].input_param.shape] == [[1, 4]]
    assert ("lab", "Input", [], ["label"]) not in names
    assert names[-1] == ("loss_prob", "Softmax", ["ip"], ["loss_prob"])
