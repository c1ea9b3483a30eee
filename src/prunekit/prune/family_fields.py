"""Which pruning fields of the SolverParameter each method family reads, and a warning, once per
field, for a field a solver sets that its family ignores (no field is silently dropped).

The families and why they ignore what they ignore:
* ``Reg_Col``/``Reg_Row`` (prune/increg/hook.py) run the fork's stage schedule. They do not read
  ``prune_interval`` / ``prune_begin_iter``: Caffe_IncReg fixed them at 1 and -1 (λ is raised every
  iteration from the first one of each prune stage), and prunekit keeps that.
* ``SPP`` also ranks only every ``prune_interval`` iterations; it starts at the first iteration.
* ``Reg_Shape`` and the mask-in-rounds zoo (prune/methods/) have no stages: the fork's stage,
  accuracy and iter_size fields mean nothing to them.

The field names are read from the SolverParameter descriptor, so a field that does not exist is
an error here, not a silently unmatched string.
"""

from __future__ import annotations

from prunekit.caffe import caffe_pb2
from prunekit.log import get_logger

#: The fork's stage fields: the schedule, its accuracy decisions and its per-state iter_size.
STAGE = ("speedup", "compRatio", "acc_borderline", "baseline_acc", "retrain_test_interval",
         "losseval_interval", "IF_eswpf", "IF_speedup_count_fc", "IF_compr_count_conv",
         "IF_use_acc1", "iter_size_prune", "iter_size_losseval", "iter_size_retrain",
         "iter_size_final_retrain", "prune_ratio_begin_ave", "standard_sparsity",
         "mul_lr_decay", "max_cnt_lr_decay", "accuracy_gap_threshold", "incre_pr_bottomline",
         "cnt_after_max_acc", "coeff_acc_2_pr", "tr_mul_bottom", "standard_incre_pr",
         "target_reg_cap", "rank_restart_each_stage", "IF_update_row_col")
#: What the zoo's round schedule reads (prune/methods/mask_method.py).
ROUNDS = ("prune_begin_iter", "prune_interval", "prune_rounds")
#: Read by every family without stages: acc_borderline only to refuse accuracy-floor mode (> 0).
NO_STAGES = ROUNDS + ("acc_borderline",)

#: The pruning fields each family reads (method or full "<method>_<unit>" name).
FAMILY_FIELDS: dict[str, tuple[str, ...]] = {
    "Reg": STAGE + ("AA", "target_reg", "kk", "IF_scheme1_when_Reg_rank", "prune_log_verbose"),
    "SPP": STAGE + ("AA", "kk", "target_reg", "prune_interval", "spp_score_decay", "spp_delta",
                    "spp_mask_mode", "prune_log_verbose"),
    "Reg_Shape": NO_STAGES + ("AA", "target_reg", "kk"),
    "Mag": NO_STAGES, "L1": NO_STAGES, "FPGM": NO_STAGES, "SFP": NO_STAGES,
    "GL": NO_STAGES + ("sparsity_lambda",), "GL_Shape": NO_STAGES + ("sparsity_lambda",),
    "Slim": NO_STAGES + ("sparsity_lambda",),
}
#: Fields a family config reads as None when the solver leaves them unset: the code tests their
#: presence (baseline_acc has no default; accuracy-floor mode needs it given).
PRESENCE = ("baseline_acc",)
#: Every pruning field some family reads: the ones checked for being set in vain.
PRUNE_FIELDS = tuple(sorted({f for fields in FAMILY_FIELDS.values() for f in fields}))

_SOLVER_FIELDS = set(caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name)
assert set(PRUNE_FIELDS) <= _SOLVER_FIELDS, set(PRUNE_FIELDS) - _SOLVER_FIELDS

#: Why a family ignores a field, by (family, field); by family; else a generic reason.
_WHY = {("Reg", "prune_interval"): "Caffe_IncReg fixed prune_interval at 1: λ rises every iteration",
        ("Reg", "prune_begin_iter"): "Caffe_IncReg fixed prune_begin_iter at -1: λ rises from the "
                                     "first iteration of every prune stage",
        ("SPP", "prune_begin_iter"): "SPP starts at the first iteration of every prune stage"}
_WHY_FAMILY = {"Reg": "a field of other methods", "SPP": "a field of other methods"}


def family_of(method: str, prune_method: str) -> str:
    """The FAMILY_FIELDS key of a method: its full name where it has its own entry."""
    return prune_method if prune_method in FAMILY_FIELDS else method


def unused_fields(param, method: str, prune_method: str) -> list[str]:
    """The pruning fields ``param`` sets that ``prune_method``'s family does not read."""
    used = set(FAMILY_FIELDS[family_of(method, prune_method)])
    return [f for f in PRUNE_FIELDS if f not in used and param.HasField(f)]


def warn_unused_fields(param, method: str, prune_method: str, source: str) -> list[str]:
    """Log one warning per pruning field set in ``source`` that the method ignores; the names."""
    family = family_of(method, prune_method)
    names = unused_fields(param, method, prune_method)
    for name in names:
        why = _WHY.get((family, name)) or _WHY_FAMILY.get(family, "it has no prune stages")
        get_logger().warning("%s: %s is set but prune_method '%s' does not use it (%s); it is "
                             "ignored", source, name, prune_method, why)
    return names
