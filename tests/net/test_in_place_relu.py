"""In-place ReLU (prunekit/net/in_place.py): which ReLUs the Net runs in place, that they
really overwrite their bottom, and that outputs and gradients equal the out-of-place net's;
bottoms that others read, the caller's input and outputs that a backward needs stay intact."""

from __future__ import annotations

import pytest
import torch
from google.protobuf import text_format

from prunekit.caffe import caffe_pb2
from prunekit.net.graph import Net
from prunekit.net.layers.base import TRAIN

SHAPE = (2, 3, 5, 5)
HEAD = f"""
layer {{ name: "data" type: "Input" top: "data"
         input_param {{ shape {{ {' '.join(f'dim: {d}' for d in SHAPE)} }} }} }}
"""


def conv(name: str, bottom: str, top: str) -> str:
    return (f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top}" '
            'convolution_param { num_output: 3 kernel_size: 3 pad: 1 '
            'weight_filler { type: "gaussian" std: 0.4 } '
            'bias_filler { type: "gaussian" std: 0.3 } } }')


def layer(name: str, kind: str, bottoms: list[str], top: str) -> str:
    bottom = " ".join(f'bottom: "{b}"' for b in bottoms)
    return f'layer {{ name: "{name}" type: "{kind}" {bottom} top: "{top}" }}'


NET = "\n".join([
    HEAD,
    layer("relu_data", "ReLU", ["data"], "data"),        # the caller's tensor: never in place
    conv("c1", "data", "c1"),
    layer("relu1", "ReLU", ["c1"], "c1"),                # conv top, read by it alone: in place
    conv("c2", "c1", "c2"),
    layer("peek", "Sigmoid", ["c2"], "peek"),            # reads c2 before the ReLU
    layer("relu2", "ReLU", ["c2"], "c2"),                # so this one stays out of place
    layer("sig", "Sigmoid", ["c2"], "s"),
    layer("relu3", "ReLU", ["s"], "s"),                  # Sigmoid's backward needs its top
    layer("sum", "Eltwise", ["s", "peek"], "sum"),
    layer("relu4", "ReLU", ["sum"], "sum"),              # Eltwise top: in place
    layer("relu5", "ReLU", ["sum"], "r5"),               # not in place in the prototxt
])


def build(in_place: bool) -> Net:
    torch.manual_seed(3)
    return Net(text_format.Parse(NET, caffe_pb2.NetParameter()), TRAIN, in_place=in_place)


def test_which_relus_run_in_place():
    assert build(True).in_place_relus == ["relu1", "relu4"]
    assert build(False).in_place_relus == []


def test_in_place_overwrites_the_bottom_and_matches_out_of_place():
    fast, slow = build(True), build(False)
    slow.load_state_dict(fast.state_dict())
    results = []
    for net in (fast, slow):
        x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1)).requires_grad_()
        before = x.detach().clone()
        net.layer("data").set_inputs([x])
        loss, outputs = net()
        (outputs["r5"] * torch.linspace(-1, 1, outputs["r5"].numel()).view_as(outputs["r5"])
         ).sum().backward()
        assert torch.equal(x.detach(), before)  # the caller's input is never overwritten
        results.append((outputs["r5"].detach(), x.grad.clone(),
                        {n: p.grad.clone() for n, p in net.named_parameters()}))
    (out_a, dx_a, grads_a), (out_b, dx_b, grads_b) = results
    assert torch.equal(out_a, out_b) and torch.equal(dx_a, dx_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), name


def test_the_in_place_relu_writes_into_the_conv_top():
    net = build(True)
    net.layer("data").set_inputs([torch.randn(SHAPE)])
    index = [e.name for e in net.entries].index("relu1")
    c1 = net.layer("c1")(torch.randn(SHAPE))
    covered, (top,) = net.run_step(index, [c1])
    assert covered == 1 and top is c1 and bool((c1 >= 0).all())
    # a leaf that requires grad (prunekit time's per-layer loop) gets a new tensor
    leaf = torch.randn(SHAPE).requires_grad_()
    _, (top,) = net.run_step(index, [leaf])
    assert top is not leaf and bool((leaf < 0).any())


@pytest.mark.parametrize("hooked", ["c1", "relu1"])
def test_a_hook_on_the_relu_or_its_producer_keeps_the_tensor(hooked):
    net = build(True)
    net.layer("data").set_inputs([torch.randn(SHAPE, generator=torch.Generator().manual_seed(4))])
    seen = {}
    net.layer(hooked).register_forward_hook(lambda m, i, o: seen.__setitem__("t", (i[0], o)))
    with torch.no_grad():
        net()
    bottom, top = seen["t"]
    assert top is not bottom
    if hooked == "c1":
        assert bool((top < 0).any())  # the conv's output as the conv made it
