"""BatchNorm (train update, global stats), Scale and Bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _layer_helpers import make_layer, randn, run, set_blob
from prunekit.errors import PrunekitError
from prunekit.net.layers.base import TEST, TRAIN

EPS = 1e-5


def test_batch_norm_training_normalises_and_accumulates():
    layer = make_layer('name: "bn" type: "BatchNorm" batch_norm_param { '
                       'moving_average_fraction: 0.9 }', (4, 3, 5, 2), phase=TRAIN)
    assert layer.blob_names == ["mean", "variance", "moving_average_factor"]
    assert list(layer.parameters()) == []  # statistics are buffers, never solver-updated
    assert [tuple(getattr(layer, n).shape) for n in layer.blob_names] == [(3,), (3,), (1,)]
    batches = [randn(4, 3, 5, 2, seed=s) * 2 + 1 for s in (1, 2)]
    sums = np.zeros((2, 3))
    factor = 0.0
    m = 4 * 5 * 2
    for x in batches:
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=(0, 2, 3))
        var = ((x64 - mean[None, :, None, None]) ** 2).mean(axis=(0, 2, 3))
        expected = (x64 - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + EPS)
        np.testing.assert_allclose(run(layer, x), expected, rtol=1e-4, atol=1e-4)
        factor = factor * 0.9 + 1
        sums = sums * 0.9 + np.stack([mean, m / (m - 1) * var])
    np.testing.assert_allclose(layer.moving_average_factor.numpy(), [factor], rtol=1e-6)
    np.testing.assert_allclose(layer.mean.numpy(), sums[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.variance.numpy(), sums[1], rtol=1e-5, atol=1e-6)


def test_batch_norm_gradient_flows_through_batch_stats():
    layer = make_layer('name: "bn" type: "BatchNorm"', (6, 2), phase=TRAIN)
    x = torch.from_numpy(randn(6, 2)).requires_grad_()
    layer(x).sum().backward()  # d/dx of Σ normalised values is 0 when stats depend on x
    np.testing.assert_allclose(x.grad.numpy(), 0, atol=1e-5)


def test_batch_norm_global_stats_in_test_phase():
    layer = make_layer('name: "bn" type: "BatchNorm"', (2, 3, 4, 4), phase=TEST)
    assert layer.use_global_stats
    mean_sum, var_sum, factor = np.array([1., -2., 3.]), np.array([4., 2., 8.]), 2.0
    for name, value in zip(layer.blob_names, (mean_sum, var_sum, [factor])):
        set_blob(layer, name, value)
    x = randn(2, 3, 4, 4)
    mean, var = mean_sum / factor, var_sum / factor
    expected = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + EPS)
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-5, atol=1e-5)
    before = layer.mean.clone()
    run(layer, x)
    assert torch.equal(layer.mean, before)  # global stats never update the blobs


def test_batch_norm_zero_factor_and_explicit_flag():
    fresh = make_layer('name: "bn" type: "BatchNorm"', (2, 3), phase=TEST)
    x = randn(2, 3)
    np.testing.assert_allclose(run(fresh, x), x / np.sqrt(EPS), rtol=1e-5)
    batch = make_layer('name: "bn" type: "BatchNorm" batch_norm_param { use_global_stats: false '
                       'eps: 0.001 }', (5, 3), phase=TEST)
    out = run(batch, x := randn(5, 3))
    expected = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_scale_with_axis_num_axes_and_bias():
    x = randn(2, 3, 4, 5)
    layer = make_layer('name: "sc" type: "Scale" scale_param { axis: 1 num_axes: 2 '
                       'bias_term: true }', x.shape)
    assert layer.blob_names == ["scale", "bias"]
    assert tuple(layer.scale.shape) == (3, 4) and float(layer.scale.detach().min()) == 1.0
    assert float(layer.bias.detach().abs().max()) == 0.0  # defaults: scale 1, bias 0
    s, b = randn(3, 4, seed=1), randn(3, 4, seed=2)
    set_blob(layer, "scale", s)
    set_blob(layer, "bias", b)
    expected = np.empty(x.shape, dtype=np.float64)  # exact reference: the layer fuses x·s + b
    for i in range(3):
        for j in range(4):
            expected[:, i, j, :] = x[:, i, j, :].astype(np.float64) * s[i, j] + b[i, j]
    np.testing.assert_allclose(run(layer, x), expected, rtol=1e-6, atol=1e-7)


def test_scale_second_bottom_and_negative_axis():
    x, s = randn(2, 3, 4), randn(3, 4, seed=1)
    layer = make_layer('name: "sc" type: "Scale" scale_param { axis: -2 }', x.shape, s.shape)
    assert layer.blob_names == []
    np.testing.assert_allclose(run(layer, x, s), x * s[None], rtol=1e-6)
    whole = make_layer('name: "sc" type: "Scale" scale_param { axis: 0 num_axes: -1 '
                       'filler { type: "constant" value: 3 } }', x.shape)
    np.testing.assert_allclose(run(whole, x), 3 * x, rtol=1e-6)


def test_bias_with_axis():
    x = randn(2, 3, 4)
    layer = make_layer('name: "b" type: "Bias" bias_param { axis: 2 }', x.shape)
    assert layer.blob_names == ["bias"] and tuple(layer.bias.shape) == (4,)
    b = randn(4, seed=3)
    set_blob(layer, "bias", b)
    np.testing.assert_allclose(run(layer, x), x + b[None, None, :], rtol=1e-6)
    two = make_layer('name: "b" type: "Bias"', x.shape, (3,))
    np.testing.assert_allclose(run(two, x, b[:3]), x + b[None, :3, None], rtol=1e-6)


@pytest.mark.parametrize("kind, text, shapes, message", [
    ("Scale", "scale_param { axis: 2 num_axes: 3 }", [(2, 3, 4)], "extends past"),
    ("Scale", "", [(2, 3, 4), (4,)], "does not match"),
    ("Bias", "bias_param { axis: 5 }", [(2, 3)], "axis 5 out of range"),
])
def test_scale_bias_errors_name_the_layer(kind, text, shapes, message):
    with pytest.raises(PrunekitError) as err:
        make_layer(f'name: "aff1" type: "{kind}" {text}', *shapes)
    assert "aff1" in str(err.value) and message in str(err.value)


def test_frozen_batch_norm_without_statistics_is_flagged_and_overflows():
    """use_global_stats in TRAIN with no statistics loaded: x/sqrt(eps), as Caffe computes it;
    flagged so `prunekit train` can warn. Batch statistics, or loaded ones, are not flagged."""
    frozen = make_layer('name: "bn" type: "BatchNorm" batch_norm_param { use_global_stats: true }',
                        (2, 3, 4, 4), phase=TRAIN)
    assert frozen.frozen_without_statistics()
    x = randn(2, 3, 4, 4, seed=1)
    np.testing.assert_allclose(run(frozen, x), x / np.sqrt(EPS), rtol=1e-5)
    assert not make_layer('name: "bn" type: "BatchNorm"', (2, 3, 4, 4),
                          phase=TRAIN).frozen_without_statistics()
    set_blob(frozen, "moving_average_factor", [1.0])
    assert not frozen.frozen_without_statistics()
