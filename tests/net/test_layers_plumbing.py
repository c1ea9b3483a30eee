"""Eltwise, Concat, Slice, Split, Flatten, Reshape, Silence, Softmax and the activations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _layer_helpers import make_layer, randn, run, set_blob
from prunekit.errors import PrunekitError

S = (2, 3, 4)


def test_eltwise_sum_with_coeff_prod_and_max():
    a, b, c = randn(*S, seed=1), randn(*S, seed=2), randn(*S, seed=3)
    summed = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: SUM coeff: 1 '
                        'coeff: -2 coeff: 0.5 }', S, S, S)
    np.testing.assert_allclose(run(summed, a, b, c), a - 2 * b + 0.5 * c, rtol=1e-6, atol=1e-6)
    prod = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: PROD }', S, S)
    np.testing.assert_allclose(run(prod, a, b), a * b, rtol=1e-6)
    mx = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: MAX }', S, S, S)
    np.testing.assert_allclose(run(mx, a, b, c), np.maximum(np.maximum(a, b), c))


def test_eltwise_max_tie_sends_gradient_to_first_bottom():
    mx = make_layer('name: "e" type: "Eltwise" eltwise_param { operation: MAX }', (3,), (3,))
    a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = torch.tensor([1.0, 5.0, 0.0], requires_grad=True)
    mx(a, b).sum().backward()
    assert a.grad.tolist() == [1.0, 0.0, 1.0] and b.grad.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize("text, shapes, message", [
    ("eltwise_param { coeff: 1 }", [S, S], "one coeff per bottom (2), got 1"),
    ("eltwise_param { operation: PROD coeff: 1 coeff: 2 }", [S, S], "only allowed with"),
    ("", [S, (2, 3, 5)], "same shape"),
    ("", [S], "at least 2 bottom"),
])
def test_eltwise_errors_name_the_layer(text, shapes, message):
    with pytest.raises(PrunekitError) as err:
        make_layer(f'name: "res2a" type: "Eltwise" {text}', *shapes)
    assert "res2a" in str(err.value) and message in str(err.value)


def test_concat_axis_and_legacy_concat_dim():
    a, b = randn(2, 3, 4, seed=1), randn(2, 5, 4, seed=2)
    layer = make_layer('name: "cat" type: "Concat"', a.shape, b.shape)
    np.testing.assert_array_equal(run(layer, a, b), np.concatenate([a, b], axis=1))
    c = randn(2, 3, 1, seed=3)
    legacy = make_layer('name: "cat" type: "Concat" concat_param { concat_dim: 2 }', a.shape,
                        c.shape)
    np.testing.assert_array_equal(run(legacy, a, c), np.concatenate([a, c], axis=2))
    neg = make_layer('name: "cat" type: "Concat" concat_param { axis: -1 }', a.shape, c.shape)
    np.testing.assert_array_equal(run(neg, a, c), np.concatenate([a, c], axis=2))


def test_concat_shape_mismatch_names_layer():
    with pytest.raises(PrunekitError, match="'inception'.*except on axis 1"):
        make_layer('name: "inception" type: "Concat"', (2, 3, 4), (2, 5, 5))
    with pytest.raises(PrunekitError, match="'inception'.*not both"):
        make_layer('name: "inception" type: "Concat" concat_param { axis: 1 concat_dim: 1 }',
                   (2, 3, 4), (2, 5, 4))


def test_slice_points_equal_split_and_slice_dim():
    x = randn(2, 6, 4)
    layer = make_layer('name: "s" type: "Slice" top: "a" top: "b" top: "c" slice_param { '
                       'slice_point: 1 slice_point: 4 }', x.shape)
    a, b, c = run(layer, x)
    np.testing.assert_array_equal(a, x[:, :1])
    np.testing.assert_array_equal(b, x[:, 1:4])
    np.testing.assert_array_equal(c, x[:, 4:])
    equal = make_layer('name: "s" type: "Slice" top: "a" top: "b" slice_param { slice_dim: 2 }',
                       x.shape)
    halves = run(equal, x)
    np.testing.assert_array_equal(halves[0], x[:, :, :2])
    np.testing.assert_array_equal(halves[1], x[:, :, 2:])


@pytest.mark.parametrize("tops, points, message", [
    (3, [2], "expected 2 slice_point values"),
    (3, [4, 2], "strictly increasing"),
    (2, [6], "strictly increasing"),
    (4, [], "do not evenly divide axis 1 of size 6"),
])
def test_slice_bad_points_name_layer(tops, points, message):
    top_text = " ".join(f'top: "t{i}"' for i in range(tops))
    point_text = " ".join(f"slice_point: {p}" for p in points)
    with pytest.raises(PrunekitError) as err:
        make_layer(f'name: "slicer" type: "Slice" {top_text} slice_param {{ {point_text} }}',
                   (2, 6))
    assert "slicer" in str(err.value) and message in str(err.value)


def test_split_copies_and_sums_gradients():
    layer = make_layer('name: "sp" type: "Split" top: "a" top: "b"', (3,))
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b = layer(x)
    assert a.data_ptr() != x.data_ptr() and torch.equal(a, x) and torch.equal(b, x)
    (2 * a + 3 * b).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 5.0]


def test_flatten_axis_and_end_axis():
    x = randn(2, 3, 4, 5)
    assert run(make_layer('name: "f" type: "Flatten"', x.shape), x).shape == (2, 60)
    mid = make_layer('name: "f" type: "Flatten" flatten_param { axis: 1 end_axis: 2 }', x.shape)
    np.testing.assert_array_equal(run(mid, x), x.reshape(2, 12, 5))
    with pytest.raises(PrunekitError, match="'f'.*must not come after"):
        make_layer('name: "f" type: "Flatten" flatten_param { axis: 2 end_axis: 1 }', x.shape)


@pytest.mark.parametrize("text, expected", [
    ("shape { dim: 0 dim: -1 }", (2, 60)),
    ("shape { dim: 0 dim: 3 dim: -1 dim: 5 }", (2, 3, 4, 5)),
    ("shape { dim: -1 dim: 10 }", (12, 10)),
    ("axis: 1 num_axes: 2 shape { dim: 12 }", (2, 12, 5)),
    ("axis: 1 shape { dim: 0 dim: -1 }", (2, 3, 20)),
    ("axis: -1 shape { dim: 1 }", (2, 3, 4, 5, 1)),
    ("axis: 2 num_axes: 0 shape { dim: 1 }", (2, 3, 1, 4, 5)),
])
def test_reshape_rules(text, expected):
    x = randn(2, 3, 4, 5)
    out = run(make_layer(f'name: "r" type: "Reshape" reshape_param {{ {text} }}', x.shape), x)
    np.testing.assert_array_equal(out, x.reshape(expected))


@pytest.mark.parametrize("text, message", [
    ("shape { dim: 7 dim: -1 }", "not divisible by the product of the specified dimensions (7)"),
    ("shape { dim: -1 dim: -1 }", "more than one -1"),
    ("shape { dim: 3 dim: 3 }", "must match input count 120"),
    ("axis: 1 shape { dim: 0 dim: 0 dim: 0 dim: 0 }", "no axis 4 to copy"),
])
def test_reshape_errors_name_layer(text, message):
    with pytest.raises(PrunekitError) as err:
        make_layer(f'name: "resh" type: "Reshape" reshape_param {{ {text} }}', (2, 3, 4, 5))
    assert "resh" in str(err.value) and message in str(err.value)


def test_silence_and_softmax():
    x = randn(2, 3, 4)
    assert make_layer('name: "s" type: "Silence"', x.shape, x.shape)(torch.zeros(1)) == ()
    sm = make_layer('name: "p" type: "Softmax" softmax_param { axis: 2 }', x.shape)
    e = np.exp(x.astype(np.float64) - x.max(axis=2, keepdims=True))
    np.testing.assert_allclose(run(sm, x), e / e.sum(axis=2, keepdims=True), rtol=1e-5)


def test_activations_match_formulas():
    x = randn(3, 4, 5) * 3
    x[0, 0, :2] = 0
    relu = make_layer('name: "r" type: "ReLU" relu_param { negative_slope: 0.1 }', x.shape)
    np.testing.assert_allclose(run(relu, x), np.where(x > 0, x, 0.1 * x), rtol=1e-6)
    np.testing.assert_array_equal(run(make_layer('name: "r" type: "ReLU"', x.shape), x),
                                  np.maximum(x, 0))
    elu = make_layer('name: "e" type: "ELU" elu_param { alpha: 0.5 }', x.shape)
    np.testing.assert_allclose(run(elu, x), np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(run(make_layer('name: "s" type: "Sigmoid"', x.shape), x),
                               1 / (1 + np.exp(-x)), rtol=1e-5)
    np.testing.assert_allclose(run(make_layer('name: "t" type: "TanH"', x.shape), x), np.tanh(x),
                               rtol=1e-5, atol=1e-7)


def test_prelu_channels_shared_and_default_slope():
    x = randn(2, 3, 4)
    layer = make_layer('name: "pr" type: "PReLU"', x.shape)
    assert layer.blob_names == ["slope"] and layer.slope.detach().tolist() == [0.25] * 3
    a = np.array([0.1, -0.5, 2.0], dtype=np.float32)
    set_blob(layer, "slope", a)
    np.testing.assert_allclose(run(layer, x), np.where(x > 0, x, a[None, :, None] * x), rtol=1e-6)
    xt = torch.tensor([[-2.0, 0.0, 3.0]]).reshape(1, 3, 1).requires_grad_()
    layer(xt).sum().backward()  # Caffe: gradient (x > 0) + slope · (x <= 0), slope alone at 0
    np.testing.assert_allclose(xt.grad.numpy().ravel(), [0.1, -0.5, 1.0], rtol=1e-6)
    shared = make_layer('name: "pr" type: "PReLU" prelu_param { channel_shared: true '
                        'filler { type: "constant" value: 0.3 } }', x.shape)
    assert tuple(shared.slope.shape) == (1,)
    np.testing.assert_allclose(run(shared, x), np.where(x > 0, x, np.float32(0.3) * x),
                               rtol=1e-6)


def test_dropout_train_scales_and_test_is_identity():
    x = np.ones((200, 100), dtype=np.float32)
    layer = make_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 0.3 }', x.shape)
    torch.manual_seed(0)
    out = run(layer.train(), x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_array_equal(run(layer.eval(), x), x)
    with pytest.raises(PrunekitError, match="'d'.*dropout_ratio"):
        make_layer('name: "d" type: "Dropout" dropout_param { dropout_ratio: 1.5 }', x.shape)


def test_every_registered_compute_layer_is_a_caffe_layer():
    from prunekit.net.layers.base import CaffeLayer
    from prunekit.net.registry import LAYER_TYPES, layer_class

    compute = [t for t, target in LAYER_TYPES.items() if target.startswith("prunekit.net.layers")]
    assert len(compute) == 31  # 25 Caffe types, ColumnConvolution, 5 for `prunekit import`
    for type_name in compute:
        assert issubclass(layer_class(type_name, "x"), CaffeLayer), type_name
