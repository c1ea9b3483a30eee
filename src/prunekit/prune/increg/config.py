"""The configs of the IncReg family (prune/increg/): Reg_Col/Reg_Row and SPP, which run the
fork's stage schedule (prune/increg/schedule.py), and Reg_Shape, which has no stages.

Each class reads the fields prune/family_fields.py lists for its family (prune/config.py builds
it) and checks them: one-line PrunekitError messages naming the solver file and the field.
"""

from __future__ import annotations

from prunekit.prune.config import (
    SPP_MASK_MODES, STATES, LayerPruneSetting, PruneConfig,
)
from prunekit.prune.units import ROW

_ITER_SIZES = ("iter_size_prune", "iter_size_losseval", "iter_size_retrain",
               "iter_size_final_retrain")


class StageConfig(PruneConfig):
    """What the fork's stage schedule reads (family_fields.STAGE), shared by Reg and SPP."""

    @property
    def solver_update_row_col(self) -> bool:
        """The solver's IF_update_row_col, ANDed with each layer's (the fork ANDed them where
        it used them)."""
        return self.if_update_row_col

    def validate_stages(self) -> None:
        """The stage fields: the ones that would hang, never test or never prune."""
        if self.retrain_test_interval <= 0:
            self.fail(f"retrain_test_interval must be > 0 (got {self.retrain_test_interval}); "
                      "with 0 retraining never tests and never ends")
        if self.losseval_interval < 0:
            self.fail(f"losseval_interval must be >= 0 (got {self.losseval_interval}); a negative "
                      "value is never reached, so retraining would never start")
        if self.acc_borderline > 0:
            if self.acc_borderline >= 1:
                self.fail(f"acc_borderline must be below 1 (got {self.acc_borderline}); "
                          "accuracies are fractions")
            if self.baseline_acc is None:
                self.fail(f"acc_borderline: {self.acc_borderline} (accuracy-floor mode) needs "
                          "baseline_acc, the accuracy of the unpruned model")
            if self.baseline_acc < self.acc_borderline:
                self.fail(f"baseline_acc ({self.baseline_acc}) must be >= acc_borderline "
                          f"({self.acc_borderline})")
        for name in _ITER_SIZES + tuple(n for n in ("prune_interval",) if n in self.fields):
            if getattr(self, name) < 1:
                self.fail(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not self.speedup > 1:
            self.fail(f"speedup must be > 1 (got {self.speedup}); a target of 1 or less is met "
                      "at once and ends every stage before it prunes (old fork configs defaulted "
                      "to 0)")
        if not self.comp_ratio > 0:
            self.fail(f"compRatio must be > 0 (got {self.comp_ratio})")
        if not 0 < self.kk < 1:
            self.fail(f"kk must be in (0, 1) (got {self.kk})")
        checks = [
            ("prune_ratio_begin_ave", 0 < self.prune_ratio_begin_ave < 1, "in (0, 1)"),
            ("standard_sparsity", self.standard_sparsity > 0, "> 0"),
            ("mul_lr_decay", 0 < self.mul_lr_decay < 1, "in (0, 1)"),
            ("max_cnt_lr_decay", self.max_cnt_lr_decay >= 0, ">= 0"),
            ("accuracy_gap_threshold", self.accuracy_gap_threshold >= 0, ">= 0"),
            ("incre_pr_bottomline", self.incre_pr_bottomline > 0, "> 0"),
            ("cnt_after_max_acc", self.cnt_after_max_acc >= 0, ">= 0"),
            ("coeff_acc_2_pr", self.coeff_acc_2_pr > 0, "> 0"),
            ("tr_mul_bottom", -0.5 < self.tr_mul_bottom < 1, "in (-0.5, 1)"),
            ("target_reg_cap", self.target_reg_cap > 0, "> 0"),
        ]
        for name, ok, rule in checks:
            if not ok:
                self.fail(f"{name} must be {rule} (got {getattr(self, name)})")
        if not self.standard_incre_pr > self.incre_pr_bottomline:
            self.fail(f"standard_incre_pr ({self.standard_incre_pr}) must be greater than "
                      f"incre_pr_bottomline ({self.incre_pr_bottomline})")

    # ------------------------------------------------------------------ states
    def iter_size_for_state(self, state: str) -> int:
        """Extra gradient-accumulation factor of a run state (docs/pruning.md "The run state machine").

        In given-ratio mode losseval and retrain use ``iter_size_final_retrain``, as in the fork.
        The factor multiplies the solver's own ``iter_size``.
        """
        if state == "prune":
            return self.iter_size_prune
        if state == "final_retrain":
            return self.iter_size_final_retrain
        if state == "losseval":
            return self.iter_size_final_retrain if self.given_ratio_mode else self.iter_size_losseval
        if state == "retrain":
            return self.iter_size_final_retrain if self.given_ratio_mode else self.iter_size_retrain
        raise ValueError(f"unknown prune state {state!r} (expected one of {', '.join(STATES)})")

    # ------------------------------------------------------------------ per-layer ratios
    def initial_prune_ratio(self, setting: LayerPruneSetting) -> float:
        """current_prune_ratio of a layer at the start of stage 1 (docs/pruning.md "Configuration in one paragraph").

        Given-ratio mode: prune_ratio. Accuracy-floor mode:
        min(prune_ratio_step · prune_ratio_begin_ave / standard_sparsity, prune_ratio)
        (0.4 × step with the default constants).
        """
        if self.given_ratio_mode:
            return setting.prune_ratio
        # rounded so that 0.75·0.2/0.5 = 0.30000000000000004 becomes 0.3, a ratio that 150 of
        # 500 columns reach exactly (the stage would never finish otherwise)
        return round(min(self.stage_prune_ratio_increment(setting, self.prune_ratio_begin_ave),
                         setting.prune_ratio), 9)

    def initial_prune_ratios(self, settings: list[LayerPruneSetting]) -> list[float]:
        return [self.initial_prune_ratio(s) for s in settings]

    def stage_prune_ratio_increment(self, setting: LayerPruneSetting, incre_pr: float) -> float:
        """A layer's share of an average stage increment: incre_pr / standard_sparsity · step."""
        return incre_pr / self.standard_sparsity * setting.prune_ratio_step


def check_aa_target_reg(config: PruneConfig) -> None:
    """IncReg's two regularisation fields (Reg_Col/Row and Reg_Shape)."""
    if not config.aa > 0:
        config.fail(f"AA must be > 0 with prune_method '{config.prune_method}' (got {config.aa}); "
                    "it is the largest per-iteration increment of a group's regularisation "
                    "factor, about weight_decay")
    if not config.target_reg > 0:
        config.fail(f"target_reg must be > 0 with prune_method '{config.prune_method}' "
                    f"(got {config.target_reg}); a group is pruned once its factor reaches it, "
                    "about 5e3 to 1e4 x AA")


class RegConfig(StageConfig):
    """Reg_Col / Reg_Row (prune/increg/hook.py)."""

    def validate(self) -> None:
        check_aa_target_reg(self)
        self.validate_stages()


class SppConfig(StageConfig):
    """SPP_Col / SPP_Row (prune/increg/spp.py)."""

    def validate(self) -> None:
        if not self.aa > 0:
            self.fail(f"AA must be > 0 with prune_method '{self.prune_method}' (got {self.aa}); "
                      "it is the largest per-iteration drop of a group's keep probability")
        if not 0 <= self.spp_score_decay <= 1:
            self.fail(f"spp_score_decay must be in [0, 1] (got {self.spp_score_decay})")
        if not 0 <= self.spp_delta < 1:
            self.fail(f"spp_delta must be in [0, 1) (got {self.spp_delta})")
        if self.spp_mask_mode not in SPP_MASK_MODES:
            self.fail(f"spp_mask_mode '{self.spp_mask_mode}' is not one of "
                      + ", ".join(SPP_MASK_MODES))
        if self.spp_mask_mode == "channel-wise" and self.unit is not ROW:
            self.fail("spp_mask_mode 'channel-wise' needs the Row unit "
                      f"(prune_method is '{self.prune_method}')")
        self.validate_stages()


class RegShapeConfig(PruneConfig):
    """Reg_Shape (prune/increg/kernel_shape.py): AA, target_reg, kk and the round fields; the
    stage fields of Reg_Col/Reg_Row are not used."""

    def validate(self) -> None:
        check_aa_target_reg(self)
        if self.acc_borderline > 0:
            self.fail(f"acc_borderline: {self.acc_borderline} (accuracy-floor mode) is not "
                      f"available with prune_method '{self.prune_method}'; set acc_borderline: "
                      "-1 and give prune_ratio per layer (the share of kernel taps to remove)")
        if not 0 < self.kk < 1:
            self.fail(f"kk must be in (0, 1) (got {self.kk})")
