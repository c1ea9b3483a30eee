"""Caffe fillers: exact values for the deterministic ones, statistics for the random ones."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from google.protobuf import text_format

from _layer_helpers import make_layer
from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError
from prunekit.net.fillers import fill_

SHAPE = (256, 128, 3, 3)  # fan_in 1152, fan_out 2304
FAN_IN, FAN_OUT = 128 * 9, 256 * 9


def filled(text: str, shape=SHAPE, seed: int = 0) -> np.ndarray:
    """A tensor of ``shape`` filled by the FillerParameter in ``text``."""
    torch.manual_seed(seed)
    t = torch.empty(shape)
    fill_(t, text_format.Parse(text, caffe_pb2.FillerParameter()))
    return t.numpy().astype(np.float64)


def test_constant_and_uniform():
    assert np.all(filled('type: "constant" value: 0.3', (4, 5)) == np.float32(0.3))
    assert np.all(filled("", (4, 5)) == 0)  # the default filler is constant 0
    u = filled('type: "uniform" min: -2 max: 3')
    assert u.min() >= -2 and u.max() <= 3 and abs(u.mean() - 0.5) < 0.02


@pytest.mark.parametrize("norm, n", [("FAN_IN", FAN_IN), ("FAN_OUT", FAN_OUT),
                                     ("AVERAGE", (FAN_IN + FAN_OUT) / 2)])
def test_xavier_and_msra_variance(norm, n):
    x = filled(f'type: "xavier" variance_norm: {norm}')
    bound = math.sqrt(3 / n)
    assert np.abs(x).max() <= bound
    assert abs(x.var() / (1 / n) - 1) < 0.02
    m = filled(f'type: "msra" variance_norm: {norm}')
    assert abs(m.mean()) < 0.01 * math.sqrt(2 / n)
    assert abs(m.var() / (2 / n) - 1) < 0.02


def test_gaussian_and_sparse():
    g = filled('type: "gaussian" mean: 1 std: 0.5')
    assert abs(g.mean() - 1) < 0.005 and abs(g.std() - 0.5) < 0.005
    s = filled('type: "gaussian" std: 1 sparse: 64', (256, 4000))
    assert abs((s != 0).mean() - 64 / 256) < 0.01


def test_positive_unitball_rows_sum_to_one():
    x = filled('type: "positive_unitball"', (10, 3, 4))
    assert x.min() >= 0
    np.testing.assert_allclose(x.reshape(10, -1).sum(axis=1), 1, rtol=1e-5)


def test_bilinear_matches_caffe_formula():
    x = filled('type: "bilinear"', (2, 3, 4, 4))
    f = math.ceil(4 / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    for i in range(16):
        xx, yy = i % 4, (i // 4) % 4
        expected = (1 - abs(xx / f - c)) * (1 - abs(yy / f - c))
        assert x[1, 2].reshape(-1)[i] == pytest.approx(expected)
    np.testing.assert_array_equal(x[0, 0], x[1, 2])


def test_fillers_use_the_global_torch_rng():
    """Seeding torch seeds the fillers (Caffe's random_seed), a different seed gives different
    weights, and a fill advances the global generator (the next layer gets fresh numbers)."""
    a = filled('type: "xavier"', (8, 8), seed=3)
    b = filled('type: "xavier"', (8, 8), seed=3)
    np.testing.assert_array_equal(a, b)
    c = filled('type: "xavier"', (8, 8), seed=4)
    assert not np.any(a == c)
    torch.manual_seed(3)
    fresh = torch.rand(16)
    torch.manual_seed(3)
    fill_(torch.empty(8, 8), text_format.Parse('type: "xavier"', caffe_pb2.FillerParameter()))
    assert not torch.equal(torch.rand(16), fresh)
    gaussian = [filled('type: "gaussian" std: 1', (8, 8), seed=s) for s in (3, 3, 4)]
    np.testing.assert_array_equal(gaussian[0], gaussian[1])
    assert not np.any(gaussian[0] == gaussian[2])


@pytest.mark.parametrize("text, message", [
    ('type: "glorot"', "unknown filler type 'glorot'"),
    ('type: "xavier" sparse: 3', "does not support sparse"),
    ('type: "bilinear"', "square kernels"),
])
def test_bad_fillers_raise(text, message):
    with pytest.raises(PrunekitError, match=message):
        filled(text, (2, 3, 4, 5))


def test_filler_error_names_the_layer():
    with pytest.raises(PrunekitError, match="layer 'ip1' \\(InnerProduct\\): unknown filler"):
        make_layer('name: "ip1" type: "InnerProduct" inner_product_param { num_output: 3 '
                   'bias_filler { type: "zeros" } }', (2, 4))
