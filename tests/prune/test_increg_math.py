"""IncReg numerical core: expected numbers are worked out by hand here, not by the code tested."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prunekit.prune.increg.math import (
    columns_to_prune,
    effective_target_reg,
    increg_step,
    scheme1_increment,
    scheme2_increment,
    scheme2_kk,
    stage_progress,
    target_multiplier,
)

F64 = np.float64


def t(values, dtype=F64):
    return np.array(values, dtype=dtype)


def close(a, b, atol=1e-8, rtol=1e-5) -> bool:
    """np.allclose that also insists on the same shape."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, atol=atol, rtol=rtol)


# ----------------------------------------------------------------------------- M(x), target_reg_eff

@pytest.mark.parametrize("x, expected", [
    (0.0, 0.106), (0.01, 0.25), (0.02, 0.415), (0.05, 1.0), (0.1, 1.894), (0.15, 2.319),
    (0.2, 2.452), (1e6, 2.5),
])
def test_target_multiplier_matches_reference_table(x, expected):
    assert target_multiplier(x) == pytest.approx(expected, abs=5e-4)


def test_target_multiplier_fixed_points_are_exact():
    assert target_multiplier(0.01) == pytest.approx(0.25, abs=1e-12)
    assert target_multiplier(0.05) == pytest.approx(1.0, abs=1e-12)
    # Other constants: M(bottomline) = bottom, M(standard) = 1.
    assert target_multiplier(0.02, bottom=0.5, standard=0.1, bottomline=0.02) == pytest.approx(0.5)
    assert target_multiplier(0.1, bottom=0.5, standard=0.1, bottomline=0.02) == pytest.approx(1.0)


def test_effective_target_reg_lenet_vgg_and_cap():
    # Reference 2.4: lenet 0.05 -> 0.1226, vgg16/resnet50 2.5 -> 6.130 at start-up (incre_pr 0.2).
    assert effective_target_reg(0.05, 0.2) == pytest.approx(0.1226, abs=1e-4)
    assert effective_target_reg(2.5, 0.2) == pytest.approx(6.130, abs=1e-3)
    assert effective_target_reg(5.0, 0.2) == 10.0
    assert effective_target_reg(5.0, 0.2, cap=20.0) == pytest.approx(12.26, abs=1e-2)


# ----------------------------------------------------------------------------- Δ(j)

def test_scheme1_hand_values_for_n_p_3():
    # kk = 0.25, n_p = 3: α = ln 8 / 3 = ln 2, N1 = ln 4 / ln 2 = 2.
    # j<2: e^(-j ln2) = 1, 1/2;  j>=2: 0.5 - 2^(j-4) = 0.25, 0, -0.5, -1.5, -3.5
    got = scheme1_increment(np.arange(7), 3, 1.0)
    assert got.dtype == np.float64                 # integer ranks give float64
    assert close(got, t([1.0, 0.5, 0.25, 0.0, -0.5, -1.5, -3.5]), atol=1e-12)


@pytest.mark.parametrize("n_p", [1, 3, 30, 450])
def test_scheme1_properties(n_p):
    AA = 5e-4
    n1 = 2.0 / 3.0 * n_p                      # −ln(0.25)/(ln(8)/n_p)
    d = scheme1_increment(t([0.0, n1, float(n_p), 2.0 * n_p]), n_p, AA)
    assert d[0].item() == pytest.approx(AA, rel=1e-12)
    assert d[1].item() == pytest.approx(0.25 * AA, rel=1e-9)
    assert d[2].item() == 0.0                 # exactly, so the group at j = n_p never creeps up
    assert d[3].item() == pytest.approx(-3.5 * AA, rel=1e-9)
    j = np.arange(0, 10 * n_p + 1, dtype=F64)
    dj = scheme1_increment(j, n_p, AA)
    assert np.all(dj[1:] < dj[:-1])           # strictly decreasing where the exponent is unclamped
    assert np.all(dj[j > n_p] < 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scheme1_finite_for_huge_ranks(dtype):
    j = np.arange(0, 1_000_001, 1000, dtype=dtype)
    d = scheme1_increment(j, 3, 1e-3)
    assert d.dtype == dtype
    assert np.isfinite(d).all()
    assert np.all(d[1:] <= d[:-1])             # non-increasing; constant once the clamp bites
    assert d[-1] < -1e3


def test_increments_accept_torch_ranks():
    # a CPU tensor is read through np.asarray: same numbers as the array
    assert close(scheme1_increment(torch.arange(7), 3, 1.0),
                 [1.0, 0.5, 0.25, 0.0, -0.5, -1.5, -3.5], atol=1e-12)
    assert close(scheme2_increment(torch.arange(5), 3, 5, 1.0, 0.25),
                 [1.0, 0.5, 0.25, -0.25, -1.0], atol=1e-12)


def test_scheme2_hand_values():
    # n_p = 3, N = 5, kk2 = 0.25: α1 = ln4/2 = ln2 -> 1, 1/2, 1/4;
    # α2 = ln4/(5-1-3) = ln4 -> -1/4, -1.
    got = scheme2_increment(np.arange(5), 3, 5, 1.0, 0.25)
    assert close(got, t([1.0, 0.5, 0.25, -0.25, -1.0]), atol=1e-12)
    # n_p = 1: α1 = 0, so Δ(0) = AA; denominator N-1-n_p = 0 -> α2 = 0 -> -AA.
    assert close(scheme2_increment(np.arange(3), 1, 2, 2.0, 0.5), t([2.0, -2.0, -2.0]))


def test_scheme2_kk_and_progress():
    assert stage_progress(0.3, 0.5, 0.1) == pytest.approx(0.5)
    assert scheme2_kk(stage_progress(0.3, 0.5, 0.1)) == pytest.approx(0.375)
    assert scheme2_kk(0.01) == 0.05            # floor
    assert scheme2_kk(0.0) == 0.05
    assert stage_progress(0.2, 0.2, 0.2) == 1.0  # empty stage counts as done, no division by zero


# ----------------------------------------------------------------------------- n_p

@pytest.mark.parametrize("G, ratio, pruned, expected", [
    (25, 0.9, 0, 23),                         # 22.5 -> 23
    (500, 0.9, 0, 450),
    (800, 0.9, 0, 720),
    (500, float(np.float32(0.9)), 0, 450),    # 449.99998807907104
    (500, float(np.float32(0.3)), 0, 150),    # 150.00000596046448 must not become 151
    (800, float(np.float32(0.3)), 0, 240),    # 240.00000953674316
    (100, 0.07, 0, 7),                        # 7.000000000000001 in float64
    (25, 0.9, 22.5, 1),                       # fractional pruned count is truncated: 23 - 22
    (25, 0.9, 23, 0),
    (25, 0.9, 24, -1),
    (3, 1 / 3, 0.9999999999, 0),             # ceil(1.0) - floor(snap(0.9999999999) = 1)
])
def test_columns_to_prune(G, ratio, pruned, expected):
    assert columns_to_prune(G, ratio, pruned) == expected


# ----------------------------------------------------------------------------- one step

def six_group_state(dtype=F64):
    # Group 3 is pruned. Values chosen so that every expected number below is exact in binary.
    scores = t([3.0, 0.5, 2.0, 99.0, 1.0, 4.0], dtype)
    H = t([2.0, 4.0, 3.0, -999998.0, 1.0, 5.0], dtype)
    reg = t([0.25, 0.125, 0.375, 2.0, 1.5, 0.375], dtype)
    pruned = np.array([False, False, False, True, False, False])
    return scores, H, reg, pruned


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_six_group_worked_example(dtype):
    scores, H, reg, pruned = six_group_state(dtype)
    # rk (pruned group first): g1=1 (0.5), g4=2 (1.0), g2=3 (2.0), g0=4 (3.0), g5=5 (4.0).
    # step 3 -> H = (2·H + rk)/3: g0 (4+4)/3=8/3, g1 (8+1)/3=3, g2 (6+3)/3=3, g4 (2+2)/3=4/3, g5 5.
    # j by H (tie g1/g2 -> lower index first): g4=0, g0=1, g1=2, g2=3, g5=4.
    # n_p = 3, AA = 1: Δ = 1, 0.5, 0.25, 0, -0.5 (see test_scheme1_hand_values_for_n_p_3).
    # λ: g4 1.5+1=2.5 (>= target 2: pruned), g0 .25+.5=.75, g1 .125+.25=.375, g2 .375 (same),
    #    g5 max(.375-.5, 0)=0 (reduced). Pruned g4: H = 3 - 1e6 - (2.5 - 2) = -999997.5.
    r = increg_step(scores, H, reg, pruned, n_p=3, step=3, AA=1.0, target_eff=2.0)
    assert not r.skipped
    assert r.j.tolist() == [1, 2, 3, -1, 0, 4]
    assert r.reg.dtype == dtype and r.running_rank.dtype == dtype
    assert close(r.reg, t([0.75, 0.375, 0.375, 2.0, 2.5, 0.0], dtype), atol=1e-6)
    assert r.newly_pruned.tolist() == [False, False, False, False, True, False]
    assert r.pruned.tolist() == [False, False, False, True, True, False]
    expected_h = [8 / 3, 3.0, 3.0, -999998.0, -999997.5, 5.0]
    assert close(r.running_rank, t(expected_h, dtype), rtol=0, atol=1e-4)
    assert r.reduced.tolist() == [False, False, False, False, False, True]
    assert r.reduced_entries() == [(5, 0.375, 0.0)]
    # inputs untouched
    assert reg.tolist() == [0.25, 0.125, 0.375, 2.0, 1.5, 0.375]
    assert pruned.tolist() == [False, False, False, True, False, False]


def test_scheme2_step_uses_unpruned_count():
    scores, H, reg, pruned = six_group_state()
    # Same j as above; 5 unpruned, n_p = 3, kk2 = 0.25: Δ(j) = 1, .5, .25, -.25, -1.
    r = increg_step(scores, H, reg, pruned, n_p=3, step=3, AA=1.0, target_eff=10.0,
                    scheme=2, kk2=0.25)
    # g4 j0: 2.5, g0 j1: .75, g1 j2: .375, g2 j3: .375-.25=.125, g5 j4: 0
    assert close(r.reg, t([0.75, 0.375, 0.125, 2.0, 2.5, 0.0]))
    assert r.reduced.tolist() == [False, False, True, False, False, True]
    assert not r.newly_pruned.any()


def test_pruned_groups_sink_and_are_frozen():
    # Pruned groups have the largest scores, but still sort first; their H and λ never move.
    scores = t([0.0, 5.0, 1.0, 9.0])
    H = t([-999990.0, 0.0, 0.0, -999995.0])
    reg = t([0.7, 0.0, 0.0, 0.8])
    pruned = np.array([True, False, False, True])
    r = increg_step(scores, H, reg, pruned, n_p=2, step=1, AA=0.1, target_eff=1.0)
    # step 1 -> H = rk; positions 0, 1 taken by pruned groups: g2 -> 2, g1 -> 3.
    assert r.running_rank.tolist() == [-999990.0, 3.0, 2.0, -999995.0]
    assert r.j.tolist() == [-1, 1, 0, -1]
    # n_p = 2 -> α = ln 8 / 2; Δ(0) = 0.1, Δ(1) = 0.1·8^(-1/2)
    assert close(r.reg, t([0.7, 0.1 / math.sqrt(8), 0.1, 0.8]))


def test_reg_clamped_at_zero_and_not_reported_when_unchanged():
    scores = t([1.0, 2.0, 3.0, 4.0])
    reg = np.zeros(4, dtype=F64)
    pruned = np.zeros(4, dtype=bool)
    r = increg_step(scores, np.zeros(4, dtype=F64), reg, pruned, n_p=1, step=1, AA=1.0,
                    target_eff=5.0)
    # n_p = 1: Δ(0) = 1, Δ(j>=1) < 0 -> clamped at 0, not "reduced".
    assert r.reg.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert not r.reduced.any()
    assert r.reduced_entries() == []


@pytest.mark.parametrize("AA, target, steps",
                         [(0.125, 0.5, 4), (0.1, 0.45, 5), (1e-3, 0.1226, 123)])
def test_group_always_ranked_first_is_pruned_after_ceil_target_over_AA(AA, target, steps):
    assert steps == math.ceil(target / AA)
    G = 5
    scores = t([3.0, 0.01, 2.0, 5.0, 4.0])      # group 1 always the least important
    H = np.zeros(G, dtype=F64)
    reg = np.zeros(G, dtype=F64)
    pruned = np.zeros(G, dtype=bool)
    for it in range(steps):
        r = increg_step(scores, H, reg, pruned, n_p=2, step=it + 1, AA=AA, target_eff=target)
        H, reg, pruned = r.running_rank, r.reg, r.pruned
        if it < steps - 1:
            assert not pruned.any(), f"pruned too early, at step {it + 1}"
    assert pruned.tolist() == [False, True, False, False, False]
    assert r.newly_pruned.tolist() == [False, True, False, False, False]
    assert H[1].item() == pytest.approx(steps - 1e6 - (steps * AA - target), abs=1e-6)
    # next step: the remaining least important group (g2) now gets j = 0
    r = increg_step(scores, H, reg, pruned, n_p=1, step=steps + 1, AA=AA, target_eff=target)
    assert r.j.tolist() == [1, -1, 0, 3, 2]


def test_at_most_n_p_prune_at_once_lowest_j_first():
    scores = t([4.0, 1.0, 3.0, 2.0])
    reg = np.full(4, 5.0, dtype=F64)            # all far above the (lowered) target
    pruned = np.zeros(4, dtype=bool)
    r = increg_step(scores, np.zeros(4, dtype=F64), reg, pruned, n_p=2, step=1, AA=0.1,
                    target_eff=1.0)
    # j: g1=0, g3=1, g2=2, g0=3 -> only g1 and g3 pruned
    assert r.newly_pruned.tolist() == [False, True, False, True]


def test_n_p_not_positive_skips():
    scores, H, reg, pruned = six_group_state()
    for n_p in (0, -2):
        r = increg_step(scores, H, reg, pruned, n_p=n_p, step=3, AA=1.0, target_eff=2.0)
        assert r.skipped
        assert r.reg is reg and r.running_rank is H and r.pruned is pruned
        assert not r.newly_pruned.any() and not r.reduced.any()


def test_rank_average_since_stage_start_and_window():
    scores = t([2.0, 1.0, 3.0])               # rk = 1, 0, 2
    H = t([0.0, 2.0, 1.0])
    reg = np.zeros(3, dtype=F64)
    pruned = np.zeros(3, dtype=bool)
    kw = dict(n_p=1, AA=0.1, target_eff=1.0)
    # original: m = step = 101 -> H barely moves
    r = increg_step(scores, H, reg, pruned, step=101, **kw)
    assert close(r.running_rank, t([1 / 101, (200 + 0) / 101, (100 + 2) / 101]))
    # stage started at iteration 100 (step 101 is its first step): m = 1 -> H = rk
    r = increg_step(scores, H, reg, pruned, step=101, rank_start=100, **kw)
    assert r.running_rank.tolist() == [1.0, 0.0, 2.0]
    # window 4: m = min(101, 4) = 4 -> EMA with weight 1/4
    r = increg_step(scores, H, reg, pruned, step=101, rank_window=4, **kw)
    assert close(r.running_rank, t([0.25, 1.5, 1.25]))


def test_step_returns_host_arrays_and_accepts_cpu_tensors():
    scores, H, reg, pruned = six_group_state()
    r = increg_step(torch.from_numpy(scores).float(), torch.from_numpy(H), torch.from_numpy(reg),
                    torch.from_numpy(pruned), n_p=3, step=3, AA=1.0, target_eff=2.0)
    for field in (r.running_rank, r.reg, r.pruned, r.newly_pruned, r.reduced, r.j):
        assert isinstance(field, np.ndarray)
    # the worked example above, from float32 scores (ranks only compare them)
    assert r.j.tolist() == [1, 2, 3, -1, 0, 4]
    assert close(r.reg, t([0.75, 0.375, 0.375, 2.0, 2.5, 0.0]), atol=1e-12)
    assert r.newly_pruned.tolist() == [False, False, False, False, True, False]
    assert r.reduced_entries() == [(5, 0.375, 0.0)]
