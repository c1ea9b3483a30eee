"""Pooling and LRN against literal transcriptions of Caffe's CPU loops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from _layer_helpers import make_layer, randn, run
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TEST

FLT_MAX = float(np.finfo(np.float32).max)  # Caffe starts a MAX window at -FLT_MAX


def caffe_pool_reference(x, kernel, stride, pad, mode, ceil=True):
    """PoolingLayer::Reshape + Forward_cpu (MAX / AVE), transcribed loop by loop."""
    n, c, h, w = x.shape
    rnd = math.ceil if ceil else math.floor
    ph_n = int(rnd((h + 2 * pad[0] - kernel[0]) / stride[0])) + 1
    pw_n = int(rnd((w + 2 * pad[1] - kernel[1]) / stride[1])) + 1
    if pad[0] or pad[1]:
        if (ph_n - 1) * stride[0] >= h + pad[0]:
            ph_n -= 1
        if (pw_n - 1) * stride[1] >= w + pad[1]:
            pw_n -= 1
    out = np.zeros((n, c, ph_n, pw_n))
    for ph in range(ph_n):
        for pw in range(pw_n):
            hs, ws = ph * stride[0] - pad[0], pw * stride[1] - pad[1]
            if mode == "MAX":
                he, we = min(hs + kernel[0], h), min(ws + kernel[1], w)
                hs, ws = max(hs, 0), max(ws, 0)
                out[:, :, ph, pw] = x[:, :, hs:he, ws:we].max(axis=(2, 3), initial=-FLT_MAX)
            else:
                he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
                size = (he - hs) * (we - ws)
                hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
                out[:, :, ph, pw] = x[:, :, hs:he, ws:we].sum(axis=(2, 3)) / size
    return out


POOL_CASES = [
    # (pooling_param fragment, input H, W, kernel, stride, pad)
    ("kernel_size: 3 stride: 2", 7, 7, (3, 3), (2, 2), (0, 0)),
    ("kernel_size: 3 stride: 2", 112, 112, (3, 3), (2, 2), (0, 0)),  # ResNet pool1 -> 56
    ("kernel_size: 3 stride: 2", 13, 13, (3, 3), (2, 2), (0, 0)),  # AlexNet pool -> 6
    ("kernel_size: 3 stride: 2 pad: 1", 7, 7, (3, 3), (2, 2), (1, 1)),
    ("kernel_size: 2 stride: 2 pad: 1", 5, 5, (2, 2), (2, 2), (1, 1)),  # last window dropped
    ("kernel_size: 3 stride: 2 pad: 2", 6, 6, (3, 3), (2, 2), (2, 2)),  # pad > k/2: fallback
    ("kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 3 pad_h: 1 pad_w: 1", 9, 8, (3, 2),
     (2, 3), (1, 1)),
    ("kernel_size: 1 stride: 3", 5, 5, (1, 1), (3, 3), (0, 0)),  # k < s: torch disagrees
    ("kernel_size: 5 stride: 4 pad: 3", 6, 6, (5, 5), (4, 4), (3, 3)),  # fallback, overhang
]


@pytest.mark.parametrize("mode", ["MAX", "AVE"])
@pytest.mark.parametrize("pool, h, w, kernel, stride, pad", POOL_CASES)
def test_pooling_matches_caffe_loop(mode, pool, h, w, kernel, stride, pad):
    shape = (2, 3, h, w)
    layer = make_layer(f'name: "p" type: "Pooling" pooling_param {{ pool: {mode} {pool} }}',
                       shape)
    x = randn(*shape)
    expected = caffe_pool_reference(x.astype(np.float64), kernel, stride, pad, mode)
    out = run(layer, x)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_pooling_known_sizes():
    for h, side in [(112, 56), (7, 3), (55, 27), (14, 7)]:  # ResNet, LeNet-ish, AlexNet, ...
        layer = make_layer('name: "p" type: "Pooling" pooling_param { kernel_size: 3 stride: 2 }',
                           (1, 1, h, h))
        assert layer.output_size((h, h)) == (side, side)


def test_pooling_floor_round_mode():
    layer = make_layer('name: "p" type: "Pooling" pooling_param { pool: AVE kernel_size: 3 '
                       'stride: 2 round_mode: FLOOR }', (1, 2, 8, 8))
    x = randn(1, 2, 8, 8)
    expected = caffe_pool_reference(x.astype(np.float64), (3, 3), (2, 2), (0, 0), "AVE",
                                    ceil=False)
    assert expected.shape[2:] == (3, 3)
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-5, atol=1e-6)


def test_global_pooling():
    x = randn(2, 3, 5, 7)
    ave = make_layer('name: "g" type: "Pooling" pooling_param { pool: AVE global_pooling: true }',
                     x.shape)
    mx = make_layer('name: "g" type: "Pooling" pooling_param { pool: MAX global_pooling: true }',
                    x.shape)
    np.testing.assert_allclose(run(ave, x)[:, :, 0, 0], x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run(mx, x)[:, :, 0, 0], x.max(axis=(2, 3)))


def test_stochastic_pooling_test_phase():
    x = np.abs(randn(1, 2, 5, 5)) + 0.1
    layer = make_layer('name: "s" type: "Pooling" pooling_param { pool: STOCHASTIC '
                       'kernel_size: 2 stride: 2 }', x.shape, phase=TEST)
    out = run(layer, x)
    assert out.shape == (1, 2, 3, 3)
    window = x[0, 1, 4:5, 2:4].astype(np.float64)  # the clipped bottom-row window
    np.testing.assert_allclose(out[0, 1, 2, 1], (window ** 2).sum() / window.sum(), rtol=1e-5)
    top_left = x[0, 0, 0:2, 0:2].astype(np.float64)
    np.testing.assert_allclose(out[0, 0, 0, 0], (top_left ** 2).sum() / top_left.sum(), rtol=1e-5)


@pytest.mark.parametrize("pool, phase, message", [
    ("pool: STOCHASTIC kernel_size: 2", 0, "STOCHASTIC pooling is not supported in the TRAIN"),
    ("pool: MAX", 0, "kernel size missing"),
    ("kernel_size: 3 pad: 3", 0, "must be smaller than the kernel"),
    ("kernel_size: 3 kernel_h: 3 kernel_w: 3", 0, "not both"),
    ("global_pooling: true kernel_size: 3", 0, "cannot be specified"),
    ("kernel_size: 9", 0, "larger than the padded input"),
])
def test_pooling_errors_name_the_layer(pool, phase, message):
    with pytest.raises(PrunekitError) as err:
        make_layer(f'name: "pool3" type: "Pooling" pooling_param {{ {pool} }}', (1, 1, 6, 6),
                   phase=phase)
    assert "pool3" in str(err.value) and message in str(err.value)


def lrn_reference(x, size, alpha, beta, k, across):
    """LRN by explicit window sums (Caffe: across channels directly; within via pool/power)."""
    n, c, h, w = x.shape
    half = (size - 1) // 2
    out = np.zeros_like(x)
    for ci in range(c):
        for i in range(h):
            for j in range(w):
                if across:
                    window = x[:, max(ci - half, 0):min(ci + half + 1, c), i, j]
                    scale = k + alpha / size * (window ** 2).sum(axis=1)
                else:
                    window = x[:, ci, max(i - half, 0):i + half + 1, max(j - half, 0):j + half + 1]
                    scale = 1 + alpha / size ** 2 * (window ** 2).sum(axis=(1, 2))
                out[:, ci, i, j] = x[:, ci, i, j] * scale ** -beta
    return out


@pytest.mark.parametrize("region, across", [("ACROSS_CHANNELS", True), ("WITHIN_CHANNEL", False)])
def test_lrn_matches_reference(region, across):
    x = randn(2, 7, 6, 5) * 3
    layer = make_layer(f'name: "norm1" type: "LRN" lrn_param {{ local_size: 5 alpha: 0.1 '
                       f'beta: 0.75 k: 2 norm_region: {region} }}', x.shape)
    expected = lrn_reference(x.astype(np.float64), 5, 0.1, 0.75, 2.0, across)
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-5, atol=1e-6)


def test_lrn_even_size_rejected():
    with pytest.raises(PrunekitError, match="'norm1'.*local_size must be odd"):
        make_layer('name: "norm1" type: "LRN" lrn_param { local_size: 4 }', (1, 3, 4, 4))


def test_both_pooling_code_paths_are_covered():
    """The cases above exercise torch's kernels and the explicit-padding fallback."""
    native = make_layer('name: "p" type: "Pooling" pooling_param { kernel_size: 3 stride: 2 }',
                        (1, 1, 7, 7))
    assert native._torch_agrees((7, 7), (3, 3), native.output_size((7, 7)))
    for text, h in [("kernel_size: 3 stride: 2 pad: 2", 6), ("kernel_size: 1 stride: 3", 5),
                    ("kernel_size: 5 stride: 4 pad: 3", 6)]:
        layer = make_layer(f'name: "p" type: "Pooling" pooling_param {{ {text} }}', (1, 1, h, h))
        assert not layer._torch_agrees((h, h), layer.kernel, layer.output_size((h, h)))
