"""BatchNorm + Scale run as one op (prunekit/net/fuse_bn_scale.py) against the two layers run
separately (``Net(..., fuse=False, in_place=False)``): outputs, gradients w.r.t. the input, γ, β
and the convolution, and BatchNorm's running statistics, over several SGD steps, for both
wirings and phases; which pairs are fused and which are not; the caffemodel keeps both layers;
modules called alone and hooked modules stay Caffe's layers; `prunekit time`'s rows."""

from __future__ import annotations

import pytest
import torch
from google.protobuf import text_format

from prunekit.caffe import caffe_pb2
from prunekit.measure.timing import time_net
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST, TRAIN
from prunekit.net.weights import net_to_caffemodel

SHAPE = (4, 3, 6, 5)


def net_text(in_place: bool, bn_param: str = "", scale_param: str = "bias_term: true",
             extra: str = "") -> str:
    """data -> conv -> BatchNorm -> Scale -> ReLU -> InnerProduct, in place or through new blobs."""
    bn_top, sc_top = ("c", "c") if in_place else ("bn_out", "sc_out")
    return f"""
    layer {{ name: "data" type: "Input" top: "data"
             input_param {{ shape {{ {' '.join(f'dim: {d}' for d in SHAPE)} }} }} }}
    layer {{ name: "conv" type: "Convolution" bottom: "data" top: "c"
             convolution_param {{ num_output: 4 kernel_size: 3 pad: 1
                                 weight_filler {{ type: "gaussian" std: 0.3 }} }} }}
    layer {{ name: "bn" type: "BatchNorm" bottom: "c" top: "{bn_top}"
             batch_norm_param {{ moving_average_fraction: 0.8 {bn_param} }} }}
    layer {{ name: "sc" type: "Scale" bottom: "{bn_top}" top: "{sc_top}"
             scale_param {{ {scale_param} }} }}
    layer {{ name: "relu" type: "ReLU" bottom: "{sc_top}" top: "{sc_top}" }}
    {extra}
    layer {{ name: "ip" type: "InnerProduct" bottom: "{sc_top}" top: "out"
             inner_product_param {{ num_output: 3 weight_filler {{ type: "gaussian" std: 0.2 }} }} }}
    """


def build(text: str, phase: int, fuse: bool, dtype=torch.float32) -> Net:
    """``fuse``: both shortcuts (the pair as one op, in-place ReLU) or neither."""
    torch.manual_seed(0)  # same fillers for the fused and the unfused net
    net_param = text_format.Parse(text, caffe_pb2.NetParameter())
    return Net(net_param, phase, fuse=fuse, in_place=fuse).to(dtype)


def give_values(net: Net) -> None:
    """Non-trivial γ, β and BatchNorm statistics (Caffe's decayed sums and factor)."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        sc, bn = net.layer("sc"), net.layer("bn")
        sc.scale.copy_(0.5 + torch.rand(sc.scale.shape, generator=g))
        if getattr(sc, "bias_term", False):
            sc.bias.copy_(torch.randn(sc.bias.shape, generator=g))
        bn.mean.copy_(torch.randn(bn.mean.shape, generator=g) * 1.6)
        bn.variance.copy_((0.5 + torch.rand(bn.variance.shape, generator=g)) * 1.6)
        bn.moving_average_factor.fill_(1.6)


def train_steps(net: Net, steps: int = 3, lr: float = 0.1) -> list[dict[str, torch.Tensor]]:
    """SGD steps on a fixed loss; per step: output, grads of input and params, then stats."""
    records = []
    g = torch.Generator().manual_seed(7)
    dtype = net.layer("conv").weight.dtype
    probe = torch.randn(SHAPE[0], 3, generator=g).to(dtype)
    params = dict(net.named_parameters())
    for _ in range(steps):
        x = (torch.randn(SHAPE, generator=g) * 2 + 0.5).to(dtype).requires_grad_()
        net.layer("data").set_inputs([x])
        _, outputs = net()
        (outputs["out"] * probe).sum().backward()
        record = {"out": outputs["out"].detach().clone(), "d_input": x.grad.clone()}
        record.update({f"d_{n}": p.grad.clone() for n, p in params.items()})
        with torch.no_grad():
            for p in params.values():
                p -= lr * p.grad
                p.grad = None
        record.update({f"bn_{n}": b.clone() for n, b in net.layer("bn").named_buffers()})
        records.append(record)
    return records


CASES = [  # (phase, BatchNorm parameter): batch statistics, stored statistics
    (TRAIN, ""), (TEST, ""), (TRAIN, "use_global_stats: true"),
]


@pytest.mark.parametrize("in_place", [True, False], ids=["in_place", "new_blobs"])
@pytest.mark.parametrize("phase,bn_param", CASES, ids=["train", "test", "train_global"])
def test_fused_pair_trains_like_the_two_layers(in_place, phase, bn_param):
    """In float64, so that the two orders of rounding differ by ~1e-15, not float32's 1e-6
    (which three SGD steps and a ReLU boundary can blow up past any tight tolerance)."""
    text = net_text(in_place, bn_param)
    fused = build(text, phase, fuse=True, dtype=torch.float64)
    plain = build(text, phase, fuse=False, dtype=torch.float64)
    assert fused.fused_pairs == [("bn", "sc")] and plain.fused_pairs == []
    assert fused.in_place_relus == ["relu"] and plain.in_place_relus == []
    plain.load_state_dict(fused.state_dict())
    give_values(fused)
    give_values(plain)
    got, want = train_steps(fused), train_steps(plain)
    for step, (a, b) in enumerate(zip(got, want)):
        assert set(a) == set(b) and {"d_layer_modules.sc.scale", "d_layer_modules.sc.bias",
                                     "d_layer_modules.conv.weight"} <= set(a)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-10, atol=1e-12,
                                       msg=lambda m: f"step {step}, {key}: {m}")
    factor = got[-1]["bn_moving_average_factor"].item()
    if phase == TRAIN and not bn_param:  # the statistics moved: 1.6 -> 0.8·(0.8·(0.8·1.6+1)+1)+1
        assert factor == pytest.approx(0.8 * (0.8 * (0.8 * 1.6 + 1) + 1) + 1)
        assert not torch.equal(got[0]["bn_mean"], got[-1]["bn_mean"])
    else:
        assert factor == pytest.approx(1.6)


def test_fused_output_is_caffes_formula():
    """γ·(x − μ)/sqrt(σ² + eps) + β with stored statistics, computed here by hand, float32."""
    net = build(net_text(False, "", extra=""), TEST, fuse=True)
    give_values(net)
    x = torch.randn(SHAPE)
    net.layer("data").set_inputs([x])
    with torch.no_grad():
        c = net.layer("conv")(x)
        got = net.run_step(2, [c])  # the BatchNorm's step runs the Scale too
    bn, sc = net.layer("bn"), net.layer("sc")
    view = (1, -1, 1, 1)
    mean, var = bn.mean / 1.6, bn.variance / 1.6
    want = (sc.scale.view(view) * (c - mean.view(view)) / torch.sqrt(var.view(view) + 1e-5)
            + sc.bias.view(view))
    assert got[0] == 2
    torch.testing.assert_close(got[1][0], want, rtol=1e-5, atol=1e-5)
    # on its own the BatchNorm module is still Caffe's BatchNorm: no γ, no β
    torch.testing.assert_close(bn(c), (c - mean.view(view)) / torch.sqrt(var.view(view) + 1e-5),
                               rtol=1e-5, atol=1e-5)


def test_a_hooked_layer_sees_its_own_values():
    """A hook on the BatchNorm gets the normalisation, not γ·x̂ + β; the ReLU does not
    overwrite the hooked Scale's output."""
    text = net_text(False, "")
    net = build(text, TEST, fuse=True)
    give_values(net)
    x = torch.randn(SHAPE)
    net.layer("data").set_inputs([x])
    seen = {}
    net.layer("bn").register_forward_hook(lambda m, i, o: seen.__setitem__("bn", o))
    net.layer("sc").register_forward_hook(lambda m, i, o: seen.__setitem__("sc", o))
    with torch.no_grad():
        net()
        c = net.layer("conv")(x)
        bn_alone = net.layer("bn")(c)
        sc_alone = net.layer("sc")(bn_alone)
    torch.testing.assert_close(seen["bn"], bn_alone)
    torch.testing.assert_close(seen["sc"], sc_alone)
    assert bool((seen["sc"] < 0).any())  # not clamped by the in-place ReLU after it


@pytest.mark.parametrize("why,text", [
    ("no bias_term", net_text(True, scale_param="bias_term: false")),
    ("two axes", net_text(False, scale_param="bias_term: true num_axes: 2")),
    ("BatchNorm top read twice", net_text(False, extra='layer { name: "peek" type: "Sigmoid" '
                                                       'bottom: "bn_out" top: "peek" }')),
])
def test_pairs_that_are_not_exact_stay_two_layers(why, text):
    fused, plain = build(text, TRAIN, fuse=True), build(text, TRAIN, fuse=False)
    assert fused.fused_pairs == [], why
    plain.load_state_dict(fused.state_dict())
    for a, b in zip(train_steps(fused, steps=2), train_steps(plain, steps=2)):
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_caffemodel_keeps_both_layers_and_their_blobs():
    text = net_text(True)
    fused, plain = build(text, TRAIN, fuse=True), build(text, TRAIN, fuse=False)
    plain.load_state_dict(fused.state_dict())
    give_values(fused)
    give_values(plain)
    train_steps(fused, steps=2)
    train_steps(plain, steps=2)
    layers = {lp.name: lp for lp in net_to_caffemodel(fused).layer}
    assert layers["bn"].type == "BatchNorm" and len(layers["bn"].blobs) == 3
    assert layers["sc"].type == "Scale" and len(layers["sc"].blobs) == 2
    reference = {lp.name: lp for lp in net_to_caffemodel(plain).layer}
    for name in ("bn", "sc"):
        for a, b in zip(layers[name].blobs, reference[name].blobs):
            torch.testing.assert_close(torch.tensor(list(a.data)), torch.tensor(list(b.data)),
                                       rtol=1e-4, atol=1e-5)


def test_time_reports_the_pair_on_the_batch_norm_line():
    net = build(net_text(True), TRAIN, fuse=True)
    net.layer("data").set_inputs([torch.randn(SHAPE)])
    result = time_net(net, 2, plain_loop=False)
    rows = {name: (fwd, bwd) for name, fwd, bwd in result.layers}
    assert list(rows) == ["data", "conv", "bn", "sc", "relu", "ip"]
    assert rows["sc"] == (0.0, 0.0)
    assert rows["bn"][0] > 0 and rows["bn"][1] > 0
