"""ColumnConvolution equals the masked dense Convolution (F.conv2d with the zeroed weight), forward
and backward, for every combination of stride, pad, dilation, group and kernel shape the issue
lists, in both memory layouts; and its parameters are checked with errors naming the layer."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

from _layer_helpers import make_layer
from prunekit.errors import PrunekitError

KERNELS = [(1, 1), (3, 3), (5, 5), (3, 5)]
COMBOS = list(itertools.product([1, 2], [0, 1, 2], [1, 2], [1, 2], KERNELS))


def column_layer(kernel, stride, pad, dilation, group, kept, channels=4, num_output=6,
                 bias=True, size=(11, 12)):
    kh, kw = kernel
    kept_text = " ".join(f"kept_column: {c}" for c in kept)
    text = f"""name: "cc" type: "ColumnConvolution"
      convolution_param {{ num_output: {num_output} kernel_h: {kh} kernel_w: {kw}
        stride: {stride} pad: {pad} dilation: {dilation} group: {group}
        bias_term: {str(bias).lower()}
        weight_filler {{ type: "gaussian" std: 1 }} bias_filler {{ type: "gaussian" std: 1 }} }}
      column_param {{ {kept_text} }}"""
    return make_layer(text, (2, channels) + size)


def random_kept(total: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, total + 1, (1,), generator=g))
    return sorted(torch.randperm(total, generator=g)[:n].tolist())


def dense_reference(layer):
    """The masked dense weight as an independent tensor: kept columns filled, the rest zero."""
    kh, kw = layer.geometry.kernel
    cg = layer.channels_per_group
    w = torch.zeros(layer.num_output, cg * kh * kw)
    w[:, layer.kept] = layer.weight.detach()
    return w.view(layer.num_output, cg, kh, kw).requires_grad_(True)


@pytest.mark.parametrize("stride,pad,dilation,group,kernel", COMBOS)
def test_equals_masked_dense_forward_and_backward(stride, pad, dilation, group, kernel):
    kh, kw = kernel
    seed = hash((stride, pad, dilation, group, kernel)) % 1000
    kept = random_kept(4 // group * kh * kw, seed)
    layer = column_layer(kernel, stride, pad, dilation, group, kept)
    dense_w = dense_reference(layer)
    dense_b = layer.bias.detach().clone().requires_grad_(True)
    x0 = torch.randn(2, 4, 11, 12, generator=torch.Generator().manual_seed(seed))
    xd = x0.clone().requires_grad_(True)
    ref = F.conv2d(xd, dense_w, dense_b, stride=stride, padding=pad, dilation=dilation,
                   groups=group)
    gy = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed + 1))
    ref.backward(gy)
    scale = float(ref.detach().abs().max())
    for layout in (torch.contiguous_format, torch.channels_last):
        layer.zero_grad()
        x = x0.clone().to(memory_format=layout).requires_grad_(True)
        out = layer(x)
        assert out.shape == ref.shape
        assert float((out - ref).abs().max()) <= 1e-4 * scale, layout
        out.backward(gy.to(memory_format=layout))
        gscale = float(xd.grad.abs().max())
        assert float((x.grad - xd.grad).abs().max()) <= 1e-4 * gscale, layout
        ref_gw = dense_w.grad.reshape(layer.num_output, -1)[:, layer.kept]
        assert float((layer.weight.grad - ref_gw).abs().max()) <= 1e-4 * float(
            ref_gw.abs().max()), layout
        assert torch.allclose(layer.bias.grad, dense_b.grad, rtol=1e-4, atol=1e-4), layout
        with torch.no_grad():  # the plain-ops path (inference, tracing) too
            assert float((layer(x.detach()) - ref).abs().max()) <= 1e-4 * scale, layout


def test_no_bias_and_several_bottoms():
    layer = column_layer((3, 3), 1, 1, 1, 1, [0, 4, 9, 30], bias=False)
    a, b = torch.randn(2, 4, 11, 12), torch.randn(2, 4, 11, 12)
    ta, tb = layer(a, b)
    w = layer.dense_weight()
    assert torch.allclose(ta, F.conv2d(a, w, padding=1), atol=1e-5)
    assert torch.allclose(tb, F.conv2d(b, w, padding=1), atol=1e-5)
    assert layer.blob_names == ["weight"] and tuple(layer.weight.shape) == (6, 4)


@pytest.mark.parametrize("kept,message", [
    ([3, 36], "kept_column 36 out of range"),
    ([5, 2], "sorted ascending and unique, got 5 before 2"),
    ([2, 2], "sorted ascending and unique, got 2 before 2"),
    ([], "kept_column is empty"),
])
def test_bad_kept_columns_name_the_layer(kept, message):
    with pytest.raises(PrunekitError, match=f"layer 'cc' \\(ColumnConvolution\\): .*{message}"):
        column_layer((3, 3), 1, 1, 1, 1, kept)


def test_missing_column_param():
    text = 'name: "cc" type: "ColumnConvolution" convolution_param { num_output: 2 kernel_size: 3 }'
    with pytest.raises(PrunekitError, match="layer 'cc'.*column_param .* is missing"):
        make_layer(text, (1, 2, 5, 5))


ONNX_COMBOS = [(1, 0, 1, 1, (1, 1)), (2, 1, 1, 2, (3, 3)), (1, 2, 2, 1, (5, 5)),
               (2, 2, 2, 2, (3, 5)), (2, 0, 1, 1, (5, 5)), (1, 1, 2, 2, (1, 1))]


@pytest.mark.parametrize("stride,pad,dilation,group,kernel", ONNX_COMBOS)
def test_onnxruntime_equals_masked_dense(tmp_path, stride, pad, dilation, group, kernel):
    """The layer exported by torch.onnx (as `prunekit export` does) and run in onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    kh, kw = kernel
    kept = random_kept(4 // group * kh * kw, seed=stride + 3 * pad + 7 * dilation + 11 * group)
    layer = column_layer(kernel, stride, pad, dilation, group, kept).eval()
    x = torch.randn(2, 4, 11, 12)
    ref = F.conv2d(x, dense_reference(layer).detach(), layer.bias.detach(), stride=stride,
                   padding=pad, dilation=dilation, groups=group)
    path = tmp_path / "cc.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(layer, (x,), str(path), dynamo=False, opset_version=17,
                          input_names=["x"])
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()})[0]
    assert float((torch.from_numpy(got) - ref).abs().max()) <= 1e-4 * float(ref.abs().max())
