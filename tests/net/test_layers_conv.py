"""Convolution, Deconvolution and InnerProduct against loop references."""

from __future__ import annotations

import numpy as np
import pytest

from _layer_helpers import make_layer, randn, run, set_blob
from prunekit.errors import PrunekitError


def conv_reference(x, w, b, stride, pad, dilation, group):
    """Caffe convolution as a literal loop over outputs (float64)."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (wd + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    out = np.zeros((n, m, oh, ow))
    for o in range(m):
        g = o // (m // group)
        for i in range(oh):
            for j in range(ow):
                acc = np.zeros(n) + (b[o] if b is not None else 0)
                for ci in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            y = i * stride[0] - pad[0] + u * dilation[0]
                            z = j * stride[1] - pad[1] + v * dilation[1]
                            if 0 <= y < h and 0 <= z < wd:
                                acc += x[:, g * cg + ci, y, z] * w[o, ci, u, v]
                out[:, o, i, j] = acc
    return out


CONV_CASES = [
    # (conv_param text, input shape, stride, pad, dilation, group)
    ("num_output: 6 kernel_size: 3", (2, 4, 7, 7), (1, 1), (0, 0), (1, 1), 1),
    ("num_output: 6 kernel_size: 3 group: 2 pad: 1 stride: 2", (2, 4, 7, 6), (2, 2), (1, 1),
     (1, 1), 2),
    ("num_output: 4 kernel_size: 3 dilation: 2 pad: 2", (1, 2, 8, 8), (1, 1), (2, 2), (2, 2), 1),
    ("num_output: 3 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0",
     (1, 2, 7, 5), (2, 1), (1, 0), (1, 1), 1),
    ("num_output: 4 kernel_size: 3 kernel_size: 1 stride: 1 stride: 2 pad: 0 pad: 1 "
     "dilation: 1 dilation: 3 group: 4", (1, 4, 6, 9), (1, 2), (0, 1), (1, 3), 4),
]


@pytest.mark.parametrize("conv, shape, stride, pad, dilation, group", CONV_CASES)
def test_convolution_matches_loop(conv, shape, stride, pad, dilation, group):
    layer = make_layer(f'name: "c" type: "Convolution" convolution_param {{ {conv} }}', shape)
    w, b = randn(*layer.weight.shape, seed=1), randn(layer.weight.shape[0], seed=2)
    set_blob(layer, "weight", w)
    set_blob(layer, "bias", b)
    x = randn(*shape)
    expected = conv_reference(x.astype(np.float64), w, b, stride, pad, dilation, group)
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-4, atol=1e-4)


def test_convolution_blobs_and_default_fillers():
    layer = make_layer('name: "c" type: "Convolution" convolution_param { num_output: 8 '
                       'kernel_size: 3 group: 2 bias_filler { type: "constant" value: 0.5 } }',
                       (1, 4, 5, 5))
    assert layer.blob_names == ["weight", "bias"]
    assert tuple(layer.weight.shape) == (8, 2, 3, 3)
    assert float(layer.weight.detach().abs().sum()) == 0.0  # Caffe's default filler: constant 0
    assert float(layer.bias.detach().min()) == float(layer.bias.detach().max()) == 0.5
    no_bias = make_layer('name: "c" type: "Convolution" convolution_param { num_output: 2 '
                         'kernel_size: 1 bias_term: false }', (1, 4, 5, 5))
    assert no_bias.blob_names == ["weight"]
    assert run(no_bias, randn(1, 4, 5, 5)).shape == (1, 2, 5, 5)


def test_convolution_1d_and_3d():
    conv1 = make_layer('name: "c" type: "Convolution" convolution_param { num_output: 2 '
                       'kernel_size: 3 }', (1, 3, 10))
    assert run(conv1, randn(1, 3, 10)).shape == (1, 2, 8)
    conv3 = make_layer('name: "c" type: "Convolution" convolution_param { num_output: 2 '
                       'kernel_size: 3 pad: 1 }', (1, 3, 4, 5, 6))
    assert run(conv3, randn(1, 3, 4, 5, 6)).shape == (1, 2, 4, 5, 6)


@pytest.mark.parametrize("conv, shape, message", [
    ("num_output: 4", (1, 3, 5, 5), "kernel size missing"),
    ("num_output: 4 kernel_size: 3 axis: 2", (1, 3, 5, 5), "axis"),
    ("num_output: 3 kernel_size: 3 group: 2", (1, 4, 5, 5), "num_output (3) must be a multiple"),
    ("num_output: 4 kernel_size: 3 group: 2", (1, 3, 5, 5), "input channels (3)"),
    ("num_output: 4 kernel_size: 3 kernel_h: 3 kernel_w: 3", (1, 3, 5, 5), "not both"),
    ("num_output: 4 kernel_size: 3 kernel_size: 3 kernel_size: 3", (1, 3, 5, 5), "0, 1 or 2"),
    ("num_output: 4 kernel_size: 7", (1, 3, 5, 5), "larger than the padded input"),
    ("num_output: 4 kernel_size: 3 weight_filler { type: \"nonsense\" }", (1, 3, 5, 5),
     "unknown filler type 'nonsense'"),
])
def test_convolution_errors_name_the_layer(conv, shape, message):
    with pytest.raises(PrunekitError) as err:
        make_layer(f'name: "conv7" type: "Convolution" convolution_param {{ {conv} }}', shape)
    assert "conv7" in str(err.value) and message in str(err.value)


def deconv_reference(x, w, b, stride, pad, group):
    """Transposed convolution as a scatter loop: each input pixel adds a weighted kernel."""
    n, c, h, wd = x.shape
    _, mg, kh, kw = w.shape
    cg = c // group
    full = np.zeros((n, mg * group, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for ci in range(c):
        g = ci // cg
        for i in range(h):
            for j in range(wd):
                patch = x[:, ci, i, j][:, None, None, None] * w[ci][None]
                full[:, g * mg:(g + 1) * mg, i * stride:i * stride + kh,
                     j * stride:j * stride + kw] += patch
    out = full[:, :, pad:full.shape[2] - pad, pad:full.shape[3] - pad]
    return out + b[None, :, None, None]


def test_deconvolution_shape_and_values():
    shape = (2, 4, 5, 6)
    layer = make_layer('name: "up" type: "Deconvolution" convolution_param { num_output: 6 '
                       'kernel_size: 4 stride: 2 pad: 1 group: 2 }', shape)
    assert tuple(layer.weight.shape) == (4, 3, 4, 4)  # [C_in, num_output/group, kh, kw]
    w, b = randn(4, 3, 4, 4, seed=3), randn(6, seed=4)
    set_blob(layer, "weight", w)
    set_blob(layer, "bias", b)
    x = randn(*shape)
    out = run(layer, x)
    assert out.shape == (2, 6, (5 - 1) * 2 - 2 + 4, (6 - 1) * 2 - 2 + 4)
    np.testing.assert_allclose(out, deconv_reference(x.astype(np.float64), w, b, 2, 1, 2),
                               rtol=1e-4, atol=1e-4)


def test_deconvolution_dilated_shape():
    layer = make_layer('name: "up" type: "Deconvolution" convolution_param { num_output: 2 '
                       'kernel_size: 3 stride: 3 pad: 2 dilation: 2 }', (1, 1, 4, 4))
    side = 3 * (4 - 1) + 2 * (3 - 1) + 1 - 2 * 2  # s(H-1) + d(k-1) + 1 - 2p
    assert run(layer, randn(1, 1, 4, 4)).shape == (1, 2, side, side) == (1, 2, 10, 10)


def test_inner_product_axis_and_transpose():
    x = randn(2, 3, 4, 5)
    w = randn(7, 20, seed=1)
    b = randn(7, seed=2)
    layer = make_layer('name: "ip" type: "InnerProduct" inner_product_param { num_output: 7 '
                       'axis: 2 }', x.shape)
    assert tuple(layer.weight.shape) == (7, 20)
    set_blob(layer, "weight", w)
    set_blob(layer, "bias", b)
    expected = np.einsum("abk,nk->abn", x.reshape(2, 3, 20).astype(np.float64), w) + b
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-4, atol=1e-4)

    t = make_layer('name: "ipt" type: "InnerProduct" inner_product_param { num_output: 7 '
                   'transpose: true bias_term: false }', x.shape)
    assert tuple(t.weight.shape) == (60, 7) and t.blob_names == ["weight"]
    wt = randn(60, 7, seed=5)
    set_blob(t, "weight", wt)
    np.testing.assert_allclose(run(t, x), x.reshape(2, 60).astype(np.float64) @ wt,
                               rtol=1e-4, atol=1e-4)


def test_inner_product_bad_axis_names_layer():
    with pytest.raises(PrunekitError, match="'fc9'.*axis 4 out of range"):
        make_layer('name: "fc9" type: "InnerProduct" inner_product_param { num_output: 2 '
                   'axis: 4 }', (2, 3, 4, 5))
