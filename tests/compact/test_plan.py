"""Which channels go, and which are kept back: Eltwise needs every input to drop a channel,
groups stay equal (a depthwise group goes with its channel), --round-to, at least one filter,
carriers."""

from __future__ import annotations

import torch

from _compact_helpers import build, compact_and_compare, load_param, randomise, zero_filters
from prunekit.compact.plan import make_plan
from prunekit.compact.trace import ChannelTrace

HEAD = 'name: "t" input: "data" input_shape { dim: 1 dim: 4 dim: 6 dim: 6 }\n'


def _conv(name: str, bottom: str, out: int, extra: str = "kernel_size: 1") -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f'convolution_param {{ num_output: {out} {extra} }} }}\n')


def _run(text: str, zero: dict, round_to: int = 1, seed: int = 0, edit=None):
    param = load_param(HEAD + text)
    net = build(param)
    randomise(net, seed=seed, bias_std=0.5)
    if edit is not None:
        edit(net)
    for layer, rows in zero.items():
        zero_filters(net, layer, rows)
    result, small, worst = compact_and_compare(param, net, round_to)
    assert worst <= 1e-4
    return net, result, small


def test_eltwise_removes_a_channel_only_when_every_input_drops_it() -> None:
    text = (_conv("a", "data", 4) + _conv("b", "data", 4) +
            'layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }\n' +
            _conv("c", "sum", 3))
    _, result, small = _run(text, {"a": [1, 2], "b": [2]})
    assert small.layer("a").weight.shape[0] == small.layer("b").weight.shape[0] == 3
    assert small.layer("c").weight.shape[1] == 3
    assert result.plan.rows_kept("a").tolist() == [True, True, False, True]


def test_grouped_conv_keeps_equal_filters_per_group() -> None:
    text = _conv("p", "data", 8) + _conv("g", "p", 6, "kernel_size: 3 pad: 1 group: 2") + \
        _conv("out", "g", 2)
    _, result, small = _run(text, {"g": [0, 1, 3]})
    g = small.layer("g")
    assert g.group == 2 and tuple(g.weight.shape) == (4, 4, 3, 3)
    _, _, why = result.plan.row_status("g")
    assert why == {"equal filters per group in 'g'": 1}


def test_depthwise_group_goes_with_its_channel() -> None:
    text = _conv("p", "data", 6) + _conv("dw", "p", 6, "kernel_size: 3 pad: 1 group: 6") + \
        _conv("q", "dw", 3)

    def zero_bias(net) -> None:
        with torch.no_grad():
            net.layer("p").bias[2] = 0        # channel 2 of p becomes exactly zero

    _, result, small = _run(text, {"p": [2], "dw": [4]}, edit=zero_bias)
    dw = small.layer("dw")
    # group 2 goes (its input channel is zero, its output is the constant bias: folded into q);
    # dw's zero filter 4 reads a live channel, so it stays to keep one filter per group
    assert dw.group == 5 and tuple(dw.weight.shape) == (5, 1, 3, 3)
    assert small.layer("p").weight.shape[0] == 5 and small.layer("q").weight.shape[1] == 5
    assert result.weights.changes["dw"].group == 5
    assert result.plan.row_status("dw")[2] == {"equal filters per group in 'dw'": 1}


def test_round_to_keeps_the_highest_l1_channels_back() -> None:
    text = _conv("a", "data", 20, "kernel_size: 3 pad: 1") + \
        'layer { name: "relu" type: "ReLU" bottom: "a" top: "a" }\n' + _conv("b", "a", 5)
    zeroed = [1, 3, 4, 8, 11, 15, 19]

    def weigh(net) -> None:
        with torch.no_grad():
            net.layer("a").bias[zeroed] = 0        # zero constants: no carrier in the way
            net.layer("b").weight[:, [4, 11, 19]] *= 100   # what b leans on most

    _, result, small = _run(text, {"a": zeroed}, round_to=8, edit=weigh)
    kept = result.plan.rows_kept("a")
    assert int(kept.sum()) == 16 and small.layer("a").weight.shape[0] == 16
    assert kept[[4, 11, 19]].all() and not kept[[1, 3, 8, 15]].any()
    assert result.plan.row_status("a")[2] == {"--round-to 8": 3}


def test_a_carrier_serves_a_consumer_without_bias() -> None:
    text = _conv("a", "data", 4) + _conv("b", "a", 3, "kernel_size: 1 bias_term: false") + \
        _conv("c", "b", 2)
    _, result, small = _run(text, {"a": [0, 1, 2]})
    # a's zeroed filters leave their biases as constants; b has no bias and no BatchNorm after
    # it, so one of them stays as the carrier of the others
    assert small.layer("a").weight.shape[0] == 2
    (why, count), = result.plan.row_status("a")[2].items()
    assert count == 1 and why.startswith("carrier: 'b' has no bias")
    assert "2 removed non-zero constant input channel(s) folded into a carrier channel" in \
        result.weights.changes["b"].notes


def test_a_layer_keeps_one_filter() -> None:
    text = _conv("a", "data", 4) + _conv("b", "a", 3)
    _, result, small = _run(text + _conv("c", "b", 2), {"b": [0, 1, 2]})
    # every filter of b is zero: its constants go into c's bias, but b keeps one filter
    assert small.layer("b").weight.shape[0] == 1
    assert result.plan.row_status("b")[2] == {"'b' keeps at least one filter": 1}


def test_live_channels_and_pins_are_never_removed() -> None:
    text = _conv("a", "data", 6) + _conv("b", "a", 3)
    param = load_param(HEAD + text)
    net = build(param)
    randomise(net)
    zero_filters(net, "b", [0, 1])              # b is the net output: pinned
    plan = make_plan(ChannelTrace(net))
    assert bool(plan.rows_kept("a").all()) and bool(plan.rows_kept("b").all())
    assert plan.row_status("b") == (0, 2, {"net output 'b'": 2})


def test_layers_sharing_weights_keep_their_shape() -> None:
    shared = 'param { name: "w" } param { name: "b" }'
    text = _conv("a", "data", 4) + \
        f'layer {{ name: "s1" type: "Convolution" bottom: "a" top: "s1" {shared} ' \
        'convolution_param { num_output: 3 kernel_size: 1 } }\n' + \
        f'layer {{ name: "s2" type: "Convolution" bottom: "a" top: "s2" {shared} ' \
        'convolution_param { num_output: 3 kernel_size: 1 } }\n' + \
        'layer { name: "sum" type: "Eltwise" bottom: "s1" bottom: "s2" top: "sum" }\n' + \
        _conv("out", "sum", 2)
    _, result, small = _run(text, {"a": [0], "s1": [1]})
    # a's zeroed filter feeds layers that share one weight blob: it stays, and so do theirs
    assert small.layer("a").weight.shape[0] == 4 and small.layer("s1").weight.shape == (3, 4, 1, 1)
    assert small.layer("s1").weight is small.layer("s2").weight
    assert result.plan.row_status("s1")[2] == {"'s1' shares its weights (param name 'w')": 1}
