"""CheckPruneStage's numbers (reference 3.4), checked against hand-computed values."""

from __future__ import annotations

import pytest

from prunekit.prune.increg.stage_search import StageSearch, bad_increment, good_increment


def search(borderline: float = 0.98, baseline: float = 0.99) -> StageSearch:
    return StageSearch(borderline=borderline, gap=5e-4, coeff=10.0, bottomline=0.01,
                       begin_ave=0.2, last_incre=0.2, ave_pr=0.2, last_feasible_acc=baseline,
                       last_feasible=[0.0, 0.0], last_infeasible=[0.0, 0.0])


def test_good_increment_is_the_margin_times_ten_clamped() -> None:
    assert good_increment(0.985, 0.98, 10, 0.01, 0.2) == pytest.approx(0.05)
    assert good_increment(0.999, 0.98, 10, 0.01, 0.2) == pytest.approx(0.19)
    assert good_increment(1.0, 0.98, 10, 0.01, 0.2) == 0.2        # capped
    assert good_increment(0.9801, 0.98, 10, 0.01, 0.2) == 0.01    # floor


def test_bad_increment_interpolates_towards_the_floor() -> None:
    # last feasible 0.99 at increment 0; the stage (+0.2) fell to 0.97; the floor 0.98 is halfway
    assert bad_increment(0.2, 0.99, 0.97, 0.98) == pytest.approx(0.1)
    assert bad_increment(0.2, 0.99, 0.99, 0.98) == 0.0  # no drop: nothing to interpolate


def test_verdict_uses_the_gap_below_the_floor() -> None:
    s = search()
    assert s.is_good(0.9796) and not s.is_good(0.9794)
    assert search(borderline=-1).is_good(0.0)  # given-ratio mode always accepts


def test_accept_then_reject_keeps_the_running_sum_honest() -> None:
    s = search()
    incre = s.accept(0.985, iteration=700, best_iter=650, best_acc=0.987, ratios=[0.3, 0.4], stage=1)
    assert incre == pytest.approx(0.05) and s.ave_pr == pytest.approx(0.25)
    assert (s.last_feasible_iter, s.last_feasible_iter2, s.accepted_stage) == (700, 650, 1)
    assert s.last_feasible == [0.3, 0.4] and s.last_feasible_acc == 0.985
    retry = s.reject(0.975, ratios=[0.4, 0.5])
    # 0.05 / (0.985 - 0.975) * (0.985 - 0.98) = 0.025; the sum swaps 0.05 for 0.025
    assert retry == pytest.approx(0.025) and s.ave_pr == pytest.approx(0.225)
    assert s.last_infeasible == [0.4, 0.5] and s.last_feasible == [0.3, 0.4]
    assert s.too_small(0.009) and not s.too_small(0.01)


def test_stage_ratio_adds_the_layer_share_and_stops_at_the_target() -> None:
    s = search()
    s.last_feasible = [0.3, 0.85]
    # share = incre / 0.5 * step: 0.2 / 0.5 * 0.75 = 0.3
    assert s.stage_ratio(0, 0.2, 0.9, 0.75, 0.5) == 0.6  # exactly, not 0.6000000000000001
    assert s.stage_ratio(1, 0.2, 0.9, 0.75, 0.5) == 0.9


def test_state_round_trip() -> None:
    s = search()
    s.accept(0.985, 700, 650, 0.987, [0.3, 0.4], 1)
    t = search()
    t.load_state_dict(s.state_dict())
    assert t == s
