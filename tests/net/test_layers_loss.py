"""SoftmaxWithLoss, EuclideanLoss and Accuracy against manual formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _layer_helpers import make_layer, randn, run
from prunekit.errors import PrunekitError

FLT_MIN = float(np.finfo(np.float32).tiny)


def softmax_loss_reference(scores, labels, ignore, mode):
    """Caffe's loop: −Σ log(max(p, FLT_MIN)) over non-ignored positions / normaliser (axis 1)."""
    n, c = scores.shape[:2]
    flat = scores.reshape(n, c, -1).astype(np.float64)
    inner = flat.shape[2]
    lab = labels.reshape(n, inner)
    total, valid = 0.0, 0
    for i in range(n):
        for j in range(inner):
            if ignore is not None and int(lab[i, j]) == ignore:
                continue
            col = flat[i, :, j]
            p = np.exp(col - col.max()) / np.exp(col - col.max()).sum()
            total -= math.log(max(p[int(lab[i, j])], FLT_MIN))
            valid += 1
    norm = {"FULL": n * inner, "VALID": valid if ignore is not None else n * inner,
            "BATCH_SIZE": n, "NONE": 1}[mode]
    return total / max(1.0, norm)


def labels_for(shape, classes, ignore=None, seed=0):
    """Float32 label blob (like Caffe's) with some positions set to ``ignore``."""
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, classes, size=shape).astype(np.float32)
    if ignore is not None:
        lab.reshape(-1)[::3] = ignore
    return lab


@pytest.mark.parametrize("mode", ["FULL", "VALID", "BATCH_SIZE", "NONE"])
@pytest.mark.parametrize("ignore", [None, 255])
def test_softmax_loss_normalisations(mode, ignore):
    scores = randn(3, 5, 2, 2) * 3
    labels = labels_for((3 * 2 * 2,), 5, ignore)
    ignore_text = f"ignore_label: {ignore}" if ignore is not None else ""
    layer = make_layer(f'name: "loss" type: "SoftmaxWithLoss" loss_param {{ {ignore_text} '
                       f'normalization: {mode} }}', scores.shape, labels.shape)
    assert layer.is_loss
    expected = softmax_loss_reference(scores, labels, ignore, mode)
    np.testing.assert_allclose(float(run(layer, scores, labels)), expected, rtol=1e-5)


def test_softmax_loss_legacy_normalize_false_is_batch_size():
    scores, labels = randn(4, 3), labels_for((4,), 3)
    layer = make_layer('name: "loss" type: "SoftmaxWithLoss" loss_param { normalize: false }',
                       scores.shape, labels.shape)
    np.testing.assert_allclose(float(run(layer, scores, labels)),
                               softmax_loss_reference(scores, labels, None, "BATCH_SIZE"),
                               rtol=1e-5)


def test_softmax_loss_gradient_and_stability():
    scores = randn(4, 6) * 1000  # huge logits: p[label] underflows, Caffe clamps at FLT_MIN
    labels = np.array([scores[0].argmin(), 1, 2, 3], dtype=np.float32)
    layer = make_layer('name: "loss" type: "SoftmaxWithLoss" top: "loss" top: "prob"',
                       scores.shape, labels.shape)
    x = torch.from_numpy(scores).requires_grad_()
    loss, prob = layer(x, torch.from_numpy(labels))
    assert torch.isfinite(loss) and float(loss.detach()) >= -math.log(FLT_MIN) / 4
    expected = softmax_loss_reference(scores, labels, None, "VALID")
    np.testing.assert_allclose(float(loss.detach()), expected, rtol=1e-5)
    loss.backward()
    onehot = np.eye(6)[labels.astype(int)]
    np.testing.assert_allclose(x.grad.numpy(), (prob.detach().numpy() - onehot) / 4, atol=1e-6)


def test_softmax_loss_label_count_mismatch_names_layer():
    with pytest.raises(PrunekitError, match="'loss'.*label count 3"):
        make_layer('name: "loss" type: "SoftmaxWithLoss"', (2, 5, 2, 2), (3,))


def test_euclidean_loss():
    a, b = randn(4, 3, seed=1), randn(4, 3, seed=2)
    layer = make_layer('name: "l2" type: "EuclideanLoss"', a.shape, b.shape)
    assert layer.is_loss
    np.testing.assert_allclose(float(run(layer, a, b)),
                               ((a.astype(np.float64) - b) ** 2).sum() / (2 * 4), rtol=1e-6)
    flat = make_layer('name: "l2" type: "EuclideanLoss"', (4, 1), (4,))
    np.testing.assert_allclose(float(run(flat, a[:, :1], b[:, 0])),
                               ((a[:, 0] - b[:, 0]) ** 2).sum() / 8, rtol=1e-6)
    with pytest.raises(PrunekitError, match="'l2'.*same count"):
        make_layer('name: "l2" type: "EuclideanLoss"', (4, 3), (4, 2))


def accuracy_reference(scores, labels, k, ignore=None):
    """BVLC Caffe's rule: correct iff fewer than k other classes score >= the true class."""
    hits = seen = 0
    for row, lab in zip(scores, labels.astype(int)):
        if ignore is not None and lab == ignore:
            continue
        better = sum(1 for c, s in enumerate(row) if c != lab and s >= row[lab])
        hits += better < k
        seen += 1
    return hits / seen if seen else 0.0


@pytest.mark.parametrize("k", [1, 2, 5])
def test_accuracy_top_k(k):
    scores, labels = randn(64, 10), labels_for((64,), 10, seed=4)
    layer = make_layer(f'name: "acc" type: "Accuracy" accuracy_param {{ top_k: {k} }}',
                       scores.shape, labels.shape)
    assert layer.needs_backward is False
    np.testing.assert_allclose(float(run(layer, scores, labels)),
                               accuracy_reference(scores, labels, k), rtol=1e-6)


def test_accuracy_ties_count_against_the_label():
    scores = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [3.0, 1.0, 1.0]], dtype=np.float32)
    labels = np.array([1, 2, 1], dtype=np.float32)
    top1 = make_layer('name: "acc" type: "Accuracy"', scores.shape, labels.shape)
    assert float(run(top1, scores, labels)) == 0.0  # every label ties with another class
    top2 = make_layer('name: "acc" type: "Accuracy" accuracy_param { top_k: 2 }', scores.shape,
                      labels.shape)
    assert float(run(top2, scores, labels)) == pytest.approx(2 / 3)


def test_accuracy_ignore_label_axis_and_per_class():
    scores = randn(2, 4, 3)  # (N, C, inner)
    labels = labels_for((6,), 4, ignore=-1, seed=2)
    layer = make_layer('name: "acc" type: "Accuracy" top: "a" top: "per_class" '
                       'accuracy_param { ignore_label: -1 axis: 1 }', scores.shape, labels.shape)
    acc, per_class = run(layer, scores, labels)
    rows = scores.transpose(0, 2, 1).reshape(6, 4)
    np.testing.assert_allclose(float(acc), accuracy_reference(rows, labels, 1, ignore=-1))
    for c in range(4):
        mask = labels == c
        want = accuracy_reference(rows[mask], labels[mask], 1) if mask.any() else 0.0
        np.testing.assert_allclose(per_class[c], want, rtol=1e-6)


def test_accuracy_top_k_too_large_names_layer():
    with pytest.raises(PrunekitError, match="'acc5'.*top_k \\(6\\)"):
        make_layer('name: "acc5" type: "Accuracy" accuracy_param { top_k: 6 }', (2, 5), (2,))
