"""Must-show: at full rank the decomposed net reproduces the original outputs (≤ 1e-4 relative),
through the rewritten prototxt (stride, pad, dilation, groups, non-square kernels, transposed
InnerProduct); the error falls monotonically as K grows."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from prunekit.decompose.auto import decompose_net
from prunekit.decompose.fc import split_fc
from prunekit.decompose.plan import check_ranks
from prunekit.decompose.spatial import composed_weight, full_rank, split_conv
from prunekit.net.graph import Net
from prunekit.net.layers.base import TEST
from prunekit.net.weights import load_net_param_blobs

from _nets import blobs_of, output, randomised, small_param


def decomposed(param, net, ranks):
    new_param, new = decompose_net(param, net, check_ranks(net, ranks, "test"))
    out = Net(new_param, TEST)
    load_net_param_blobs(out, {**blobs_of(net), **new}, "test")
    return out, new_param


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def test_full_rank_reproduces_outputs_through_the_prototxt():
    param = small_param()
    net = randomised(param)
    ranks = {"a": ("conv", 12), "b": ("conv", 9), "fc": ("fc", 7)}   # full ranks
    new, new_param = decomposed(param, net, ranks)
    names = [lp.name for lp in new_param.layer]
    assert names == ["data", "a_v", "a_h", "b_v", "b_h", "relu", "fc_red", "fc_rec", "out"]
    x = torch.randn(2, 4, 13, 11, generator=torch.Generator().manual_seed(1))
    assert relative(output(new, x), output(net, x)) <= 1e-4
    b_v = new.layer("b_v")
    assert (b_v.geometry.stride, b_v.geometry.pad, b_v.geometry.dilation) == ((2, 1), (1, 0), (2, 1))
    assert tuple(b_v.weight.shape) == (18, 3, 3, 1) and new.layer("b_h").group == 2


def test_error_falls_monotonically_with_rank():
    """Of the split layer's output (RMS over a batch of random inputs) and of its weight
    (Frobenius, Eckart–Young); the net's final output after ReLU and FC layers need not be."""
    param = small_param()
    del param.layer[3:]                                  # data, a, b: b is the output
    net = randomised(param)
    x = torch.randn(16, 4, 13, 11, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = net({"data": x})[1]["b"]
    errors, weight_errors = [], []
    for k in range(1, 10):
        new, _ = decomposed(param, net, {"b": ("conv", k)})
        with torch.no_grad():
            got = new({"data": x})[1]["b"]
        errors.append(float((got - ref).norm() / ref.norm()))
        v, h = new.layer("b_v").weight.detach(), new.layer("b_h").weight.detach()
        w = net.layer("b").weight.detach()
        weight_errors.append(float((composed_weight(v, h, 2) - w).norm()))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:])), errors
    assert all(later < earlier for earlier, later in zip(weight_errors, weight_errors[1:]))
    assert errors[-1] <= 1e-5 < errors[0]


@pytest.mark.parametrize("stride,pad,dilation,group", [((1, 1), (0, 0), (1, 1), 1),
                                                       ((3, 2), (2, 1), (1, 2), 3)])
def test_spatial_split_equals_the_conv(stride, pad, dilation, group):
    gen = torch.Generator().manual_seed(3)
    w = torch.randn(6, 2, 3, 4, generator=gen)
    b = torch.randn(6, generator=gen)
    x = torch.randn(1, 2 * group, 9, 10, generator=gen)
    v, h = split_conv(w, group, full_rank(w, group))
    y = F.conv2d(x, w, b, stride, pad, dilation, group)
    t = F.conv2d(x, v, None, (stride[0], 1), (pad[0], 0), (dilation[0], 1), group)
    z = F.conv2d(t, h, b, (1, stride[1]), (0, pad[1]), (1, dilation[1]), group)
    assert relative(z, y) <= 1e-5


def test_fc_split_is_the_truncated_svd():
    w = torch.randn(7, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    red, rec = split_fc(w.float(), False, 3)
    s = torch.linalg.svdvals(w)
    err = torch.linalg.matrix_norm(w - (rec @ red).double())
    assert abs(float(err) - float(s[3:].square().sum().sqrt())) < 1e-4   # Eckart–Young
