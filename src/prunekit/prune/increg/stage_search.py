"""CheckPruneStage: accept or reject a retrained pruning stage, and size the next one
(docs/pruning.md "Stage check").

Accuracy-floor mode (``acc_borderline > 0``) searches for the sparsest model whose accuracy
stays at the floor. A stage's score is the mean of the top-3 test accuracies of its retrain
cycle. Within ``accuracy_gap_threshold`` of the floor (or above it) the stage is **good**: it
becomes the last feasible model and the next increment grows with the margin,
``clamp((acc − floor) · coeff_acc_2_pr, incre_pr_bottomline, prune_ratio_begin_ave)``. Below it
the stage is **bad**: the run rolls back to the last feasible model and retries with an
increment interpolated linearly towards the floor,
``last_incre · (last_feasible_acc − floor) / (last_feasible_acc − acc)``. Increments are
average sparsity steps; a layer's share is ``incre / standard_sparsity · prune_ratio_step``.

Given-ratio mode (``acc_borderline <= 0``) always accepts, with increment
``prune_ratio_begin_ave``. This module holds the numbers only; ``schedule`` does the snapshots,
rollbacks and log lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


def good_increment(acc: float, borderline: float, coeff: float, low: float, high: float) -> float:
    """Next average increment after an accepted stage: the margin above the floor × coeff,
    clamped to [low, high] (the fork: ×10, clamped to [0.01, 0.2])."""
    return min(max((acc - borderline) * coeff, low), high)


def bad_increment(last_incre: float, last_feasible_acc: float, acc: float,
                  borderline: float) -> float:
    """Retry increment after a rejected stage: the linear interpolation, in accuracy, between
    the last feasible model (increment 0) and the rejected stage (``last_incre``) aimed at the
    floor. 0 when the rejected stage did not lose accuracy (nothing to interpolate)."""
    drop = last_feasible_acc - acc
    if drop <= 0:
        return 0.0
    return last_incre / drop * (last_feasible_acc - borderline)


@dataclass
class StageSearch:
    """What the search knows about the last accepted ("feasible") stage and the last increment.

    Accuracies are fractions (0..1); ``*_iter`` are solver iterations; ratios are per registered
    layer, in the method's unit (columns for Col, rows for Row).
    """

    borderline: float
    gap: float
    coeff: float
    bottomline: float
    begin_ave: float
    last_incre: float = 0.0
    ave_pr: float = 0.0
    last_feasible_acc: float = 0.0      # the stage's top-3 mean (baseline_acc before stage 1)
    last_feasible_acc2: float = -1.0    # the stage's best single test
    last_feasible_iter: int = 0         # iteration of the accepted stage's _stage<K> snapshot
    last_feasible_iter2: int = -1       # iteration of its best retrain snapshot
    accepted_stage: int = 0             # K of the last accepted stage (0: none yet)
    last_feasible: list[float] = field(default_factory=list)
    last_infeasible: list[float] = field(default_factory=list)

    @classmethod
    def from_config(cls, config, num_layers: int, start_iter: int) -> StageSearch:
        baseline = config.baseline_acc if config.baseline_acc is not None else 0.0
        return cls(borderline=config.acc_borderline, gap=config.accuracy_gap_threshold,
                   coeff=config.coeff_acc_2_pr, bottomline=config.incre_pr_bottomline,
                   begin_ave=config.prune_ratio_begin_ave, last_incre=config.prune_ratio_begin_ave,
                   ave_pr=config.prune_ratio_begin_ave, last_feasible_acc=baseline,
                   last_feasible_iter=start_iter, last_feasible=[0.0] * num_layers,
                   last_infeasible=[0.0] * num_layers)

    @property
    def given_ratio(self) -> bool:
        return self.borderline <= 0

    def is_good(self, acc: float) -> bool:
        """Good unless more than ``gap`` below the floor (always good in given-ratio mode)."""
        return self.given_ratio or self.borderline - acc <= self.gap

    def accept(self, acc: float, iteration: int, best_iter: int, best_acc: float,
               ratios: list[float], stage: int) -> float:
        """Record stage ``stage`` as feasible; return the next increment."""
        self.last_feasible_iter, self.last_feasible_iter2 = iteration, best_iter
        self.last_feasible_acc, self.last_feasible_acc2 = acc, best_acc
        self.last_feasible = list(ratios)
        self.accepted_stage = stage
        incre = self.begin_ave if self.given_ratio else good_increment(
            acc, self.borderline, self.coeff, self.bottomline, self.begin_ave)
        self.ave_pr += incre
        self.last_incre = incre
        return incre

    def reject(self, acc: float, ratios: list[float]) -> float:
        """Record the stage as infeasible; return the retry increment (running sum corrected)."""
        self.last_infeasible = list(ratios)
        incre = bad_increment(self.last_incre, self.last_feasible_acc, acc, self.borderline)
        self.ave_pr += incre - self.last_incre
        self.last_incre = incre
        return incre

    def too_small(self, incre: float) -> bool:
        """Another stage with this increment is not worth it: go to final_retrain."""
        return incre < self.bottomline

    def stage_ratio(self, index: int, incre: float, prune_ratio: float, step: float,
                    standard: float) -> float:
        """A layer's next current_prune_ratio: last feasible + its share, at most prune_ratio.

        Rounded to 9 decimals so that sums like 0.1 + 0.2 compare equal to the pruned ratio
        count/G they aim at (a layer must be able to *reach* its stage target).
        """
        return round(min(self.last_feasible[index] + incre / standard * step, prune_ratio), 9)

    def state_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
