"""SPP numerical core: expected numbers are worked out by hand here, not by the code under test."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunekit.prune.increg.spp_math import (
    deterministic_mask,
    linear_increment,
    sample_group_mask,
    spp_groups_to_prune,
    spp_step,
    update_score,
)

F64 = np.float64


def t(values, dtype=F64):
    return np.array(values, dtype=dtype)


def close(a, b, atol=1e-8) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, atol=atol)


@pytest.mark.parametrize("G, ratio, delta, pruned, expected", [
    (25, 0.8, 0.1, 0, 23),        # 22.5 -> 23
    (500, 0.7, 0.2, 10, 440),     # (0.7 + 0.2)·500 = 449.99999999999994 -> 450, minus 10
    (20, 0.5, 0.0, 10, 0),
])
def test_groups_to_prune(G, ratio, delta, pruned, expected):
    assert spp_groups_to_prune(G, ratio, delta, pruned) == expected


def test_linear_increment():
    # n_p = 4, AA = 0.2: 0.2 - 0.05·j
    assert close(linear_increment(np.arange(6), 4, 0.2), t([0.2, 0.15, 0.1, 0.05, 0.0, -0.05]))


def test_update_score_discounts_and_freezes_pruned():
    pruned = np.array([False, False, True])
    s = update_score(t([1.0, 2.0, 4.0]), t([1.0, 1.0, 1.0]), pruned, 0.5)
    assert s.tolist() == [1.5, 2.0, 4.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_worked_example_exp(dtype):
    score = t([1.0, 2.0, 0.0, 0.5, 3.0], dtype)
    l1 = t([1.0, 0.0, 7.0, 1.0, 0.5], dtype)
    prob = t([1.0, 0.5, 0.0, 0.375, 0.75], dtype)
    pruned = np.array([False, False, True, False, False])
    # S = 0.5·S + L1 = 1.5, 1.0, (pruned, kept 0), 1.25, 2.0 -> j: g1=0, g3=1, g0=2, g4=3.
    # n_p = 3, AA = 0.5, kk = 0.25: α = ln2, N1 = 2 -> Δ = 0.5, 0.25, 0.125, 0.
    # p: g1 0.5-0.5 = 0 (pruned), g3 0.375-0.25 = 0.125, g0 1-0.125 = 0.875, g4 0.75.
    r = spp_step(score, l1, prob, pruned, n_p=3, AA=0.5, decay=0.5)
    assert not r.skipped
    assert r.score.dtype == dtype and r.prob.dtype == dtype
    assert close(r.score, t([1.5, 1.0, 0.0, 1.25, 2.0], dtype))
    assert close(r.prob, t([0.875, 0.0, 0.0, 0.125, 0.75], dtype), atol=1e-6)
    assert r.newly_pruned.tolist() == [False, True, False, False, False]
    assert r.pruned.tolist() == [False, True, True, False, False]
    assert prob.tolist() == [1.0, 0.5, 0.0, 0.375, 0.75]           # input untouched


def test_worked_example_linear_and_clip_at_one():
    score = np.zeros(6, dtype=F64)
    l1 = t([5.0, 0.0, 4.0, 1.0, 3.0, 2.0])      # j: g1=0, g3=1, g5=2, g4=3, g2=4, g0=5
    prob = t([0.98, 1.0, 0.5, 0.5, 0.5, 0.5])
    pruned = np.zeros(6, dtype=bool)
    # n_p = 4, AA = 0.2: Δ = 0.2, 0.15, 0.1, 0.05, 0, -0.05
    r = spp_step(score, l1, prob, pruned, n_p=4, AA=0.2, decay=0.9, variant="linear")
    # g0: 0.98+0.05 -> clipped to 1; g1 0.8; g2 0.5; g3 0.35; g4 0.45; g5 0.4
    assert close(r.prob, t([1.0, 0.8, 0.5, 0.35, 0.45, 0.4]))
    assert not r.newly_pruned.any()


def test_probability_reaches_zero_and_stays_pruned():
    score = np.zeros(4, dtype=F64)
    l1 = t([2.0, 0.1, 3.0, 4.0])                # g1 always least important (until pruned)
    prob = np.ones(4, dtype=F64)
    pruned = np.zeros(4, dtype=bool)
    for step in range(1, 5):                    # Δ(0) = AA = 0.25 -> p = 0 after exactly 4 steps
        r = spp_step(score, l1, prob, pruned, n_p=2, AA=0.25, decay=0.0)
        score, prob, pruned = r.score, r.prob, r.pruned
        assert pruned.tolist() == [False, step == 4, False, False]
    assert prob[1].item() == 0.0
    assert r.newly_pruned.tolist() == [False, True, False, False]
    # Later updates: even with the largest L1 (weights not zeroed here) it stays pruned at p = 0,
    # and g0 becomes the least important (j = 0).
    l1 = t([2.0, 100.0, 3.0, 4.0])
    for _ in range(2):
        r = spp_step(score, l1, prob, pruned, n_p=1, AA=0.25, decay=0.0)
        score, prob, pruned = r.score, r.prob, r.pruned
        assert pruned[1] and prob[1].item() == 0.0 and not r.newly_pruned[1]
    # g0: 4 steps at j = 1 (Δ = 0.25·8^(-1/2)), then 2 at j = 0 (Δ = 0.25)
    assert prob[0].item() == pytest.approx(1.0 - 1.0 / 8 ** 0.5 - 0.5)


def test_n_p_not_positive_skips():
    s, p = np.ones(3, dtype=F64), np.ones(3, dtype=F64)
    pruned = np.zeros(3, dtype=bool)
    r = spp_step(s, s, p, pruned, n_p=0, AA=0.1)
    assert r.skipped and r.prob is p and r.score is s and not r.newly_pruned.any()


def test_sample_group_mask_frequencies_and_pruned_off():
    p = torch.tensor([0.0, 0.25, 0.5, 0.9, 1.0, 0.7], dtype=torch.float64)
    pruned = torch.tensor([False, False, False, False, False, True])
    g = torch.Generator().manual_seed(1234)
    draws = 4000
    masks = torch.stack([sample_group_mask(p, pruned, g) for _ in range(draws)])
    assert masks.dtype == torch.bool
    freq = masks.double().mean(0)
    assert freq[0] == 0.0 and freq[4] == 1.0 and freq[5] == 0.0
    # binomial sd ≤ sqrt(0.25/4000) ≈ 0.008; allow ~4 sd
    assert torch.allclose(freq[1:4], p[1:4], atol=0.03)


def test_sampling_is_reproducible_and_rng_use_independent_of_pruning():
    p = torch.tensor([0.3, 0.6, 0.9], dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = sample_group_mask(p, torch.tensor([False, False, False]), g1)
    b = sample_group_mask(p, torch.tensor([True, False, False]), g2)
    assert a[1:].tolist() == b[1:].tolist() and not b[0]
    assert torch.equal(g1.get_state(), g2.get_state())      # same number of draws consumed
    # resuming from a saved state replays the same masks
    state = g1.get_state()
    first = sample_group_mask(p, torch.zeros(3, dtype=torch.bool), g1)
    g1.set_state(state)
    assert torch.equal(sample_group_mask(p, torch.zeros(3, dtype=torch.bool), g1), first)


def test_deterministic_mask():
    p = t([0.0, 0.1, 1.0, 0.5])
    pruned = np.array([False, False, False, True])
    keep = deterministic_mask(p, pruned)
    assert isinstance(keep, np.ndarray) and keep.dtype == bool
    assert keep.tolist() == [False, True, True, False]
    # a CPU tensor pair gives the same host mask
    from_tensors = deterministic_mask(torch.from_numpy(p), torch.from_numpy(pruned))
    assert from_tensors.tolist() == keep.tolist()
