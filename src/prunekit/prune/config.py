"""Pruning configuration: the solver's pruning fields and the net's ``prune_param``, checked.

Caffe_IncReg read its settings straight from the protobuf messages while it ran, so a mistake
(a method name that matches nothing, ``retrain_test_interval: 0``, a missing ``prune_ratio_step``)
showed up hours later as a hang, an abort or a run that pruned nothing (docs/pruning.md,
"Departures from the fork"). :meth:`PruneConfig.from_solver` reads the SolverParameter once, up
front, into the config class of the chosen method's family, which raises
:class:`~prunekit.errors.PrunekitError` naming the file, the field and the value for each of
those. ``docs/pruning-fields.md`` lists every field.

This module holds what every family shares (the method, unit and plain decay, the run mode, the
per-layer settings). The families and their config classes:
* ``Reg_Col``/``Reg_Row`` and ``SPP_*``: prune/increg/config.py (RegConfig, SppConfig, the fork's
  stage schedule);
* ``Reg_Shape``: prune/increg/config.py (RegShapeConfig);
* the mask-in-rounds zoo (Mag, L1, FPGM, SFP, GL, GL_Shape, Slim): prune/methods/config.py.
Each method class names its config class (``CONFIG``); the fields a family reads are listed once,
in prune/family_fields.py, and read from the SolverParameter descriptor by
prune/config_fields.py (``AA`` → ``aa``, ``compRatio`` → ``comp_ratio``; floats as the decimal
the prototxt wrote). A family config has no attribute for a field its family does not read.

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
from typing import ClassVar, NoReturn

from prunekit.errors import PrunekitError
from prunekit.net.state_rules import layer_included
from prunekit.prune.config_fields import f32 as _f32
from prunekit.prune.config_fields import read_fields
from prunekit.prune.family_fields import FAMILY_FIELDS, family_of, warn_unused_fields
from prunekit.prune.units import Unit, unit_named

TRAIN = 0  # caffe.Phase values, as in prunekit.net.layers.base
TEST = 1

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


class PruneConfig:
    """Validated pruning settings of one solver: the shared part of every family's config.

    Build with :meth:`from_solver`, which returns the family's own class (a subclass). Besides
    ``source``, ``prune_method`` (canonical "<method>_<unit>", e.g. "Reg_Col"), ``method``
    ("Reg", "SPP", "L1", ...), ``unit`` (prune/units.py) and ``decay_type`` (the plain decay added
    for every parameter: "L2" or "L1"), an instance has one read-only attribute per field its
    family reads (prune/family_fields.py), named as prune/config_fields.py says.
    """

    source: str
    prune_method: str
    method: str
    unit: Unit
    decay_type: str
    acc_borderline: float   # read by every family (accuracy-floor mode, or its refusal)

    def __init__(self, source: str, prune_method: str, method: str, unit: Unit, decay_type: str,
                 fields: dict[str, object]) -> None:
        values = dict(source=source, prune_method=prune_method, method=method, unit=unit,
                      decay_type=decay_type, **fields)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "fields", tuple(fields))

    def __setattr__(self, name: str, value) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only (tried to set {name})")

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in ("prune_method", *self.fields))
        return f"{type(self).__name__}({shown})"

    # ------------------------------------------------------------------ building
    @classmethod
    def from_solver(cls, param, source_path: str) -> PruneConfig | None:
        """Read and check the pruning fields of a SolverParameter; None when pruning is off.

        ``source_path`` names the solver file in error messages. Raises PrunekitError for an
        unknown or conflicting method, and for settings that would hang or never prune
        (docs/pruning-fields.md, "Validation"). The config is the class the method declares
        (its ``CONFIG``), filled with exactly the fields its family reads.
        """
        method, unit, decay = _resolve_method(param, source_path)
        if method is None:
            return None
        prune_method = f"{method}_{unit}"
        from prunekit.prune.registry import config_class  # the method classes import this module
        family_cls = config_class(method, prune_method)
        fields = read_fields(param, FAMILY_FIELDS[family_of(method, prune_method)])
        config = family_cls(source_path, prune_method, method, unit_named(unit), decay, fields)
        config.validate()
        warn_unused_fields(param, method, prune_method, source_path)
        return config

    def fail(self, msg: str) -> NoReturn:
        """Raise the one-line error about this solver file."""
        raise PrunekitError(f"{self.source}: {msg}")

    def validate(self) -> None:
        """Check the family's fields; each family config overrides this."""
        raise NotImplementedError(f"{type(self).__name__} does not validate its fields")

    # ------------------------------------------------------------------ modes
    @property
    def mode(self) -> str:
        """GIVEN_RATIO ("given prune ratio, get best accuracy") when acc_borderline <= 0, else
        ACC_FLOOR ("given accuracy floor, get max sparsity", multi-stage search)."""
        return GIVEN_RATIO if self.acc_borderline <= 0 else ACC_FLOOR

    @property
    def given_ratio_mode(self) -> bool:
        return self.mode == GIVEN_RATIO

    @property
    def solver_update_row_col(self) -> bool:
        """The solver-wide IF_update_row_col switch; families that do not read that field
        (no neighbour propagation of their own) leave each layer's flag as it is."""
        return True

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
                bool(pp.IF_update_row_col) and self.solver_update_row_col))
        return settings



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

