"""The channel trace: what it calls constant is constant in a real forward pass, with that value;
what it cannot follow is pinned, with a reason."""

from __future__ import annotations

import torch

from _compact_helpers import build, load_param, randomise, zero_filters
from prunekit.compact.trace import ChannelTrace, other_phase_pins
from prunekit.net.graph import store_tops
from prunekit.net.layers.base import TEST

ZOO = """
name: "zoo" input: "data" input_shape { dim: 2 dim: 3 dim: 9 dim: 9 }
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
  convolution_param { num_output: 8 kernel_size: 3 } }
layer { name: "bn" type: "BatchNorm" bottom: "c1" top: "c1" }
layer { name: "sc" type: "Scale" bottom: "c1" top: "c1" scale_param { bias_term: true } }
layer { name: "prelu" type: "PReLU" bottom: "c1" top: "p" }
layer { name: "sig" type: "Sigmoid" bottom: "p" top: "s" }
layer { name: "tanh" type: "TanH" bottom: "c1" top: "t" }
layer { name: "elu" type: "ELU" bottom: "t" top: "e" }
layer { name: "drop" type: "Dropout" bottom: "e" top: "e" }
layer { name: "bias" type: "Bias" bottom: "e" top: "b" }
layer { name: "scalar" type: "Scale" bottom: "b" top: "b2" scale_param { num_axes: 0 } }
layer { name: "sum" type: "Eltwise" bottom: "s" bottom: "b2" top: "sum"
  eltwise_param { coeff: 2 coeff: -0.5 } }
layer { name: "prod" type: "Eltwise" bottom: "s" bottom: "b2" top: "prod"
  eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "s" bottom: "b2" top: "max"
  eltwise_param { operation: MAX } }
layer { name: "mp" type: "Pooling" bottom: "sum" top: "mp"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ap" type: "Pooling" bottom: "prod" top: "ap"
  pooling_param { pool: AVE kernel_size: 2 stride: 2 } }
layer { name: "ap_pad" type: "Pooling" bottom: "max" top: "ap_pad"
  pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "lrn" type: "LRN" bottom: "max" top: "lrn"
  lrn_param { local_size: 3 norm_region: WITHIN_CHANNEL } }
layer { name: "cat_h" type: "Concat" bottom: "mp" bottom: "ap" top: "cat_h"
  concat_param { axis: 2 } }
layer { name: "c2" type: "Convolution" bottom: "cat_h" top: "c2"
  convolution_param { num_output: 4 kernel_size: 1 } }
layer { name: "c3" type: "Convolution" bottom: "ap_pad" top: "c3"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "c4" type: "Convolution" bottom: "lrn" top: "c4"
  convolution_param { num_output: 4 kernel_size: 1 } }
"""


def _zoo():
    param = load_param(ZOO)
    net = build(param)
    randomise(net, seed=5)
    with torch.no_grad():
        for name in ("prelu", "bias"):
            layer = net.layer(name)
            blob = layer.slope if name == "prelu" else layer.bias
            blob.copy_(torch.linspace(-1, 1, blob.numel()).view_as(blob))
        net.layer("scalar").scale.fill_(1.5)
    zero_filters(net, "c1", [0, 2, 3, 5, 7])
    return param, net


def _forward_versions(trace: ChannelTrace, x: torch.Tensor) -> dict[int, torch.Tensor]:
    """Every blob version's tensor in a real forward pass (batch of 2 random images)."""
    blobs, values = {}, {}
    loss = torch.zeros(())
    with torch.no_grad():
        for layer in trace.layers:
            if layer.kind == "data":
                tops = (x,)
            else:
                out = layer.module(*[blobs[b] for b in layer.entry.bottoms])
                tops = (out,) if isinstance(out, torch.Tensor) else tuple(out)
            loss = store_tops(layer.entry, tops, blobs, loss)
            values.update({vid: t for vid, t in zip(layer.tops, tops)})
    return values


def test_constants_are_constant_in_a_real_forward_with_the_traced_value() -> None:
    param, net = _zoo()
    trace = ChannelTrace(net)
    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(0))
    actual = _forward_versions(trace, x)
    checked = 0
    for version in trace.versions:
        for ch in (~version.live).nonzero().flatten().tolist():
            got = actual[version.id][:, ch]
            torch.testing.assert_close(got.double(), torch.full_like(got.double(),
                                       float(version.value[ch])), rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked > 60
    # the zeroed c1 filters are constant through every channel-wise layer above
    by_name = {v.name: v for v in trace.versions}
    for name in ("p", "s", "t", "e", "b", "b2", "sum", "prod", "max", "mp", "ap"):
        assert (~by_name[name].live).nonzero().flatten().tolist() == [0, 2, 3, 5, 7], name
    # along H, a Concat of two different constants is not one constant
    assert bool(by_name["cat_h"].live.all())
    # a padded AVE pool and the WITHIN_CHANNEL LRN change non-zero constants at the borders
    assert bool(by_name["ap_pad"].live.all()) and bool(by_name["lrn"].live.all())
    # a padded conv reading non-zero constants makes maps that differ at the borders: live
    assert bool(by_name["c3"].live.all())


def test_pins_name_what_holds_each_channel() -> None:
    text = ZOO.replace('layer { name: "c4"', '''
layer { name: "across" type: "LRN" bottom: "c2" top: "across" lrn_param { local_size: 3 } }
layer { name: "flat" type: "Flatten" bottom: "c3" top: "flat" }
layer { name: "c4"''')
    param = load_param(text)
    net = build(param)
    trace = ChannelTrace(net)

    def reason(layer: str) -> str:
        return trace.pin_reason[int(trace.row_classes(layer)[0])]

    assert "LRN ACROSS_CHANNELS" in reason("c2")
    assert reason("c3") == "read by 'flat' (Flatten)"
    assert reason("c4") == "net output 'c4'"
    assert int(trace.classes(0)[0]) in trace.pin_reason                    # the data
    assert not bool(trace.pinned[trace.row_classes("c1")].any())


def test_eltwise_ties_channels_and_other_phases_pin_what_they_read() -> None:
    text = """
    name: "tie" input: "data" input_shape { dim: 1 dim: 2 dim: 5 dim: 5 }
    layer { name: "a" type: "Convolution" bottom: "data" top: "a"
            convolution_param { num_output: 4 kernel_size: 1 } }
    layer { name: "b" type: "Convolution" bottom: "data" top: "b"
            convolution_param { num_output: 4 kernel_size: 1 } }
    layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" }
    layer { name: "c" type: "Convolution" bottom: "sum" top: "c"
            convolution_param { num_output: 3 kernel_size: 1 } }
    layer { name: "aux" type: "Scale" bottom: "b" top: "aux" include { phase: TRAIN } }
    """
    param = load_param(text)
    net = build(param, TEST)
    pins = other_phase_pins(param, net, "TEST")
    assert pins == {"b": "read by 'aux' (Scale), a layer outside the TEST net"}
    trace = ChannelTrace(net, pins)
    assert torch.equal(trace.row_classes("a"), trace.row_classes("b"))
    assert bool(trace.pinned[trace.row_classes("a")].all())
    free = ChannelTrace(net)
    assert not bool(free.pinned[free.row_classes("a")].any())
