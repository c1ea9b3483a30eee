"""The layer types added for ``prunekit import`` against formulas written out in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunekit.caffe import caffe_pb2, parse_text
from prunekit.errors import PrunekitError
from prunekit.net.registry import layer_class


def make(text: str, shape):
    param = parse_text(text, caffe_pb2.LayerParameter())
    return layer_class(param.type, param.name)(param, [tuple(shape)], 1)


X = np.random.default_rng(0).standard_normal((2, 6, 3, 4)).astype(np.float32) * 4


def run(layer, x=X):
    with torch.no_grad():
        return layer(torch.from_numpy(x)).numpy()


def test_clip_clamps_and_refuses_min_above_max():
    out = run(make('name: "c" type: "Clip" clip_param { min: 0 max: 6 }', X.shape))
    np.testing.assert_array_equal(out, np.minimum(np.maximum(X, 0), 6))
    with pytest.raises(PrunekitError, match="'c'.*min"):
        make('name: "c" type: "Clip" clip_param { min: 2 max: 1 }', X.shape)


def test_swish_is_x_sigmoid_beta_x():
    for beta in (1.0, 0.5):
        out = run(make(f'name: "s" type: "Swish" swish_param {{ beta: {beta} }}', X.shape))
        np.testing.assert_allclose(out, X / (1 + np.exp(-beta * X)), rtol=1e-5, atol=1e-6)


def test_hard_swish_is_onnx_formula():
    out = run(make('name: "h" type: "HardSwish"', X.shape))
    np.testing.assert_allclose(out, X * np.clip(X / 6 + 0.5, 0, 1), rtol=1e-6, atol=1e-6)


def test_power_is_shift_plus_scale_x_to_the_power():
    out = run(make('name: "p" type: "Power" power_param { power: 2 scale: 0.5 shift: 1 }',
                   X.shape))
    np.testing.assert_allclose(out, (1 + 0.5 * X) ** 2, rtol=1e-5)


def test_shuffle_channel_permutes_as_group_by_channels_transposed():
    out = run(make('name: "sh" type: "ShuffleChannel" shuffle_channel_param { group: 3 }',
                   X.shape))
    # output channel j*g + i is input channel i*(C/g) + j, written out for C = 6, g = 3
    order = [0, 2, 4, 1, 3, 5]
    np.testing.assert_array_equal(out, X[:, order])
    with pytest.raises(PrunekitError, match="'sh'.*multiple of group 4"):
        make('name: "sh" type: "ShuffleChannel" shuffle_channel_param { group: 4 }', X.shape)
