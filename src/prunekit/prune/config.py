"""Pruning configuration: the solver's Caffe_IncReg fields and the net's ``prune_param``, checked.

Caffe_IncReg read its settings straight from the protobuf messages while it ran, so a mistake
(a method name that matches nothing, ``retrain_test_interval: 0``, a missing ``prune_ratio_step``)
showed up hours later as a hang, an abort or a run that pruned nothing (docs/pruning.md,
"Departures from the fork"). :class:`PruneConfig` reads the SolverParameter once, up front, and raises
:class:`~prunekit.errors.PrunekitError` naming the file, the field and the value for each of
those. ``docs/pruning-fields.md`` lists every field.

Naming: attributes are the proto field names in lower case (``AA`` → ``aa``, ``IF_eswpf`` →
``if_eswpf``, ``compRatio`` → ``comp_ratio``). Float fields are returned as the shortest decimal
that rounds to the stored float32 (``0.1``, not ``0.10000000149011612``), i.e. what the prototxt
says.

Departures from the fork:
* The method is chosen by ``prune_method`` alone. ``regularization_type: "Reg_Col"`` (how the fork
  selected the algorithm) is accepted as an alias when ``prune_method`` is unset/"None" or names
  the same method; any other combination is an error instead of a silent no-op. Plain decay is
  then L2, as in the fork's ``Reg_*`` branch.
* The fork's compiled-in constants are solver fields (``kk``, ``mul_lr_decay``, ...), defaulting
  to the fork's values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunekit.errors import PrunekitError
from prunekit.net.state_rules import layer_included
from prunekit.prune.family_fields import warn_unused_fields
from prunekit.prune.units import ROW, SHAPE, Unit, unit_named

TRAIN = 0  # caffe.Phase values, as in prunekit.net.layers.base
TEST = 1

#: The method zoo (docs/methods/): masks set in rounds, training runs to max_iter.
ZOO_METHODS = ("Mag", "L1", "FPGM", "SFP", "GL", "Slim")
#: Layer types that are registered for pruning (every one of them, in prototxt order).
PRUNABLE_TYPES = ("Convolution", "InnerProduct")
#: The run states of the stage machine (docs/pruning.md "The run state machine").
STATES = ("prune", "losseval", "retrain", "final_retrain")
#: SPP mask sampling modes (docs/pruning.md "SPP"); "channel-wise" exists for the Row unit only.
SPP_MASK_MODES = ("group-wise", "element-wise", "channel-wise")
#: regularization_type values that mean plain decay only.
PLAIN_DECAY = ("L1", "L2")

GIVEN_RATIO = "given_ratio"
ACC_FLOOR = "acc_floor"


def _method_tables() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(spelling -> method, method -> units) as the method classes declare them
    (prune/registry.py; imported here, not at module level, as the classes import this module)."""
    from prunekit.prune.registry import declared
    return declared()


def _accepted_methods() -> str:
    aliases, units = _method_tables()
    names = ", ".join(f"{m}_{u}" for m in aliases for u in units[aliases[m]])
    return f'{names} or "None"'


def _f32(value: float) -> float:
    """The decimal a prototxt wrote for a float field (shortest round-trip of the float32)."""
    return float(str(np.float32(value)))


@dataclass(frozen=True)
class LayerPruneSetting:
    """One registered layer (Convolution or InnerProduct of the TRAIN net), in prototxt order.

    ``if_update_row_col`` is the effective flag: the layer's ``prune_param.IF_update_row_col``
    AND the solver's global ``IF_update_row_col`` (the fork ANDed them where it used them).
    A layer without ``prune_param`` gets prune_ratio 0 (never pruned itself; it can still lose
    rows or columns through neighbour propagation).
    """

    name: str
    type: str
    prune_ratio: float
    prune_ratio_step: float
    if_update_row_col: bool


@dataclass(frozen=True)
class PruneConfig:
    """Validated pruning settings of one solver. Build with :meth:`from_solver`."""

    source: str
    prune_method: str          # canonical "<method>_<unit>", e.g. "Reg_Col"
    method: str                # "Reg" or "SPP"
    unit: Unit                 # prune/units.py: COL, ROW, SHAPE, CHANNEL or WEIGHT
    decay_type: str            # plain decay added for every parameter: "L2" or "L1"
    # fork fields (docs/pruning-fields.md "Solver fields from Caffe_IncReg")
    aa: float
    target_reg: float
    speedup: float
    comp_ratio: float
    acc_borderline: float
    baseline_acc: float | None
    retrain_test_interval: int
    losseval_interval: int
    if_update_row_col: bool
    if_eswpf: bool
    if_speedup_count_fc: bool
    if_compr_count_conv: bool
    if_scheme1_when_reg_rank: bool
    if_use_acc1: bool
    iter_size_prune: int
    iter_size_losseval: int
    iter_size_retrain: int
    iter_size_final_retrain: int
    # the fork's constants, now fields
    kk: float = 0.25
    prune_interval: int = 1
    prune_begin_iter: int = -1
    prune_ratio_begin_ave: float = 0.2
    standard_sparsity: float = 0.5
    mul_lr_decay: float = 0.1
    max_cnt_lr_decay: int = 4
    accuracy_gap_threshold: float = 5e-4
    incre_pr_bottomline: float = 0.01
    cnt_after_max_acc: int = 4
    coeff_acc_2_pr: float = 10.0
    tr_mul_bottom: float = 0.25
    standard_incre_pr: float = 0.05
    target_reg_cap: float = 10.0
    # method zoo (docs/methods/)
    prune_rounds: int = 1
    sparsity_lambda: float = 0.0
    # prunekit options
    prune_log_verbose: bool = False
    rank_restart_each_stage: bool = False
    spp_score_decay: float = 0.9
    spp_delta: float = 0.0
    spp_mask_mode: str = "group-wise"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_solver(cls, param, source_path: str) -> PruneConfig | None:
        """Read and check the pruning fields of a SolverParameter; None when pruning is off.

        ``source_path`` names the solver file in error messages. Raises PrunekitError for an
        unknown or conflicting method, and for settings that would hang or never prune
        (docs/pruning-fields.md, "Validation").
        """
        src = source_path
        method, unit, decay = _resolve_method(param, src)
        if method is None:
            return None
        f = param
        values = dict(
            source=src, prune_method=f"{method}_{unit}", method=method, unit=unit_named(unit),
            decay_type=decay,
            aa=_f32(f.AA), target_reg=_f32(f.target_reg), speedup=_f32(f.speedup),
            comp_ratio=_f32(f.compRatio), acc_borderline=_f32(f.acc_borderline),
            baseline_acc=_f32(f.baseline_acc) if f.HasField("baseline_acc") else None,
            retrain_test_interval=int(f.retrain_test_interval),
            losseval_interval=int(f.losseval_interval),
            if_update_row_col=bool(f.IF_update_row_col), if_eswpf=bool(f.IF_eswpf),
            if_speedup_count_fc=bool(f.IF_speedup_count_fc),
            if_compr_count_conv=bool(f.IF_compr_count_conv),
            if_scheme1_when_reg_rank=bool(f.IF_scheme1_when_Reg_rank),
            if_use_acc1=bool(f.IF_use_acc1),
            iter_size_prune=int(f.iter_size_prune), iter_size_losseval=int(f.iter_size_losseval),
            iter_size_retrain=int(f.iter_size_retrain),
            iter_size_final_retrain=int(f.iter_size_final_retrain),
            kk=_f32(f.kk), prune_interval=int(f.prune_interval),
            prune_begin_iter=int(f.prune_begin_iter),
            prune_ratio_begin_ave=_f32(f.prune_ratio_begin_ave),
            standard_sparsity=_f32(f.standard_sparsity), mul_lr_decay=_f32(f.mul_lr_decay),
            max_cnt_lr_decay=int(f.max_cnt_lr_decay),
            accuracy_gap_threshold=_f32(f.accuracy_gap_threshold),
            incre_pr_bottomline=_f32(f.incre_pr_bottomline),
            cnt_after_max_acc=int(f.cnt_after_max_acc), coeff_acc_2_pr=_f32(f.coeff_acc_2_pr),
            tr_mul_bottom=_f32(f.tr_mul_bottom), standard_incre_pr=_f32(f.standard_incre_pr),
            target_reg_cap=_f32(f.target_reg_cap),
            prune_log_verbose=bool(f.prune_log_verbose),
            rank_restart_each_stage=bool(f.rank_restart_each_stage),
            spp_score_decay=_f32(f.spp_score_decay), spp_delta=_f32(f.spp_delta),
            spp_mask_mode=str(f.spp_mask_mode),
            prune_rounds=int(f.prune_rounds), sparsity_lambda=_f32(f.sparsity_lambda),
        )
        config = cls(**values)
        config._validate()
        warn_unused_fields(param, method, config.prune_method, src)
        return config

    def _validate(self) -> None:
        def fail(msg: str) -> None:
            raise PrunekitError(f"{self.source}: {msg}")

        if self.method in ZOO_METHODS:
            self._validate_zoo(fail)
            return
        if self.method == "Reg":
            if not self.aa > 0:
                fail(f"AA must be > 0 with prune_method '{self.prune_method}' (got {self.aa}); "
                     "it is the largest per-iteration increment of a group's regularisation "
                     "factor, about weight_decay")
            if not self.target_reg > 0:
                fail(f"target_reg must be > 0 with prune_method '{self.prune_method}' "
                     f"(got {self.target_reg}); a group is pruned once its factor reaches it, "
                     "about 5e3 to 1e4 x AA")
            if self.unit is SHAPE:
                self._validate_reg_shape(fail)
                return
        elif self.method == "SPP":
            if not self.aa > 0:
                fail(f"AA must be > 0 with prune_method '{self.prune_method}' (got {self.aa}); "
                     "it is the largest per-iteration drop of a group's keep probability")
            if not 0 <= self.spp_score_decay <= 1:
                fail(f"spp_score_decay must be in [0, 1] (got {self.spp_score_decay})")
            if not 0 <= self.spp_delta < 1:
                fail(f"spp_delta must be in [0, 1) (got {self.spp_delta})")
            if self.spp_mask_mode not in SPP_MASK_MODES:
                fail(f"spp_mask_mode '{self.spp_mask_mode}' is not one of "
                     + ", ".join(SPP_MASK_MODES))
            if self.spp_mask_mode == "channel-wise" and self.unit is not ROW:
                fail("spp_mask_mode 'channel-wise' needs the Row unit "
                     f"(prune_method is '{self.prune_method}')")
        if self.retrain_test_interval <= 0:
            fail(f"retrain_test_interval must be > 0 (got {self.retrain_test_interval}); "
                 "with 0 retraining never tests and never ends")
        if self.losseval_interval < 0:
            fail(f"losseval_interval must be >= 0 (got {self.losseval_interval}); a negative "
                 "value is never reached, so retraining would never start")
        if self.acc_borderline > 0:
            if self.acc_borderline >= 1:
                fail(f"acc_borderline must be below 1 (got {self.acc_borderline}); accuracies "
                     "are fractions")
            if self.baseline_acc is None:
                fail(f"acc_borderline: {self.acc_borderline} (accuracy-floor mode) needs "
                     "baseline_acc, the accuracy of the unpruned model")
            if self.baseline_acc < self.acc_borderline:
                fail(f"baseline_acc ({self.baseline_acc}) must be >= acc_borderline "
                     f"({self.acc_borderline})")
        for name in ("iter_size_prune", "iter_size_losseval", "iter_size_retrain",
                     "iter_size_final_retrain", "prune_interval"):
            if getattr(self, name) < 1:
                fail(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not self.speedup > 1:
            fail(f"speedup must be > 1 (got {self.speedup}); a target of 1 or less is met at "
                 "once and ends every stage before it prunes (old fork configs defaulted to 0)")
        if not self.comp_ratio > 0:
            fail(f"compRatio must be > 0 (got {self.comp_ratio})")
        if not 0 < self.kk < 1:
            fail(f"kk must be in (0, 1) (got {self.kk})")
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
                fail(f"{name} must be {rule} (got {getattr(self, name)})")
        if not self.standard_incre_pr > self.incre_pr_bottomline:
            fail(f"standard_incre_pr ({self.standard_incre_pr}) must be greater than "
                 f"incre_pr_bottomline ({self.incre_pr_bottomline})")

    def _validate_reg_shape(self, fail) -> None:
        """Reg_Shape reads AA, target_reg, kk and prune_begin_iter; the stage fields of
        Reg_Col/Reg_Row are not used."""
        if self.acc_borderline > 0:
            fail(f"acc_borderline: {self.acc_borderline} (accuracy-floor mode) is not available "
                 f"with prune_method '{self.prune_method}'; set acc_borderline: -1 and give "
                 "prune_ratio per layer (the share of kernel taps to remove)")
        if not 0 < self.kk < 1:
            fail(f"kk must be in (0, 1) (got {self.kk})")

    def _validate_zoo(self, fail) -> None:
        """The fields the method zoo reads (docs/methods/README.md); the fork's stage fields
        are not used by these methods."""
        pm = self.prune_method
        if self.acc_borderline > 0:
            fail(f"acc_borderline: {self.acc_borderline} (accuracy-floor mode) is not available "
                 f"with prune_method '{pm}'; set acc_borderline: -1 and give prune_ratio per layer")
        if self.prune_rounds < 1:
            fail(f"prune_rounds must be >= 1 (got {self.prune_rounds})")
        if self.prune_interval < 1:
            fail(f"prune_interval must be >= 1 (got {self.prune_interval}); it is the number of "
                 "iterations between pruning rounds")
        if self.sparsity_lambda < 0:
            fail(f"sparsity_lambda must be >= 0 (got {self.sparsity_lambda})")
        if self.method in ("GL", "Slim") and not self.sparsity_lambda > 0:
            fail(f"sparsity_lambda must be > 0 with prune_method '{pm}' (got "
                 f"{self.sparsity_lambda}); it is the sparsity penalty's strength, about 1e-4")

    # ------------------------------------------------------------------ modes and states
    @property
    def mode(self) -> str:
        """GIVEN_RATIO ("given prune ratio, get best accuracy") when acc_borderline <= 0, else
        ACC_FLOOR ("given accuracy floor, get max sparsity", multi-stage search)."""
        return GIVEN_RATIO if self.acc_borderline <= 0 else ACC_FLOOR

    @property
    def given_ratio_mode(self) -> bool:
        return self.mode == GIVEN_RATIO

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

    # ------------------------------------------------------------------ layers
    def layer_settings(self, net_param, phase: int = TRAIN, *, level: int = 0,
                       stages: tuple[str, ...] = (),
                       source: str | None = None) -> list[LayerPruneSetting]:
        """Every Convolution/InnerProduct of the ``phase`` net, in prototxt order (index = L).

        ``phase``/``level``/``stages`` select layers by their include/exclude rules, as the
        Net does (pass the solver's train_state). ``source`` names the net file in errors.

        Raises PrunekitError naming the layer for: ``prune_param`` on any other layer type (the
        fork aborted on Deconvolution), prune_ratio outside [0, 1), a negative
        prune_ratio_step, and, in accuracy-floor mode, prune_ratio > 0 with prune_ratio_step 0
        (that layer would never prune).
        """
        src = source or getattr(net_param, "name", "") or "<net>"
        settings: list[LayerPruneSetting] = []
        for lp in net_param.layer:
            has = lp.HasField("prune_param")
            where = f"{src}: layer '{lp.name}' ({lp.type})"
            if lp.type not in PRUNABLE_TYPES:
                if has:
                    raise PrunekitError(
                        f"{where}: prune_param is only allowed on "
                        + " and ".join(PRUNABLE_TYPES) + " layers")
                continue
            if not layer_included(lp, phase, level, stages):
                continue
            pp = lp.prune_param
            ratio, step = _f32(pp.prune_ratio), _f32(pp.prune_ratio_step)
            if not 0 <= ratio < 1:
                raise PrunekitError(f"{where}: prune_ratio must be in [0, 1), got {ratio}")
            if step < 0:
                raise PrunekitError(f"{where}: prune_ratio_step must be >= 0, got {step}")
            if ratio > 0 and step <= 0 and not self.given_ratio_mode:
                raise PrunekitError(
                    f"{where}: prune_ratio_step must be > 0 when prune_ratio > 0 in "
                    f"accuracy-floor mode (acc_borderline: {self.acc_borderline}); with 0 the "
                    "layer never prunes")
            settings.append(LayerPruneSetting(
                lp.name, lp.type, ratio, step,
                bool(pp.IF_update_row_col) and self.if_update_row_col))
        return settings

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


def _split_method(value: str, field: str, src: str) -> tuple[str, str]:
    aliases, units = _method_tables()
    head, sep, tail = value.partition("_")
    if not sep or head not in aliases or tail not in units[aliases[head]]:
        hint = ""
        if sep and aliases.get(head) in ("Reg", "SPP") and tail == "Weight":
            hint = " (the Weight unit has no algorithm in Caffe_IncReg or prunekit)"
        raise PrunekitError(
            f"{src}: {field} '{value}' is not a pruning method prunekit knows{hint}; "
            f"accepted: {_accepted_methods()}")
    return aliases[head], tail


def _resolve_method(param, src: str) -> tuple[str | None, str | None, str]:
    """(method, unit, plain decay type) from prune_method and regularization_type."""
    pm = param.prune_method
    rt = param.regularization_type if param.HasField("regularization_type") else "L2"
    from_pm = None if pm in ("", "None") else _split_method(pm, "prune_method", src)
    if rt in PLAIN_DECAY:
        decay, from_rt = rt, None
    elif "_" in rt:
        from_rt = _split_method(rt, "regularization_type", src)
        decay = "L2"
    else:
        raise PrunekitError(
            f"{src}: regularization_type '{rt}' is neither plain decay ("
            + ", ".join(PLAIN_DECAY) + f") nor a pruning method ({_accepted_methods()})")
    if from_rt is not None and from_pm is not None and from_rt != from_pm:
        raise PrunekitError(
            f"{src}: regularization_type '{rt}' conflicts with prune_method '{pm}'; prunekit "
            "chooses the method by prune_method: set regularization_type to L2 (or to the "
            "same method)")
    chosen = from_pm or from_rt
    if chosen is None:
        return None, None, decay
    return chosen[0], chosen[1], decay

