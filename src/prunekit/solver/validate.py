"""Solver settings prunekit refuses up front, with a message, instead of misbehaving later.

Each check is one line naming the solver file and the field. Caffe itself stops (a CHECK) on
some of these (``lr_policy: "step"`` without ``stepsize``, an unknown policy); the others it
accepts and then trains on nonsense (a negative or NaN ``base_lr``, ``momentum: 1`` which never
forgets a gradient), which costs a researcher hours before it shows.
"""

from __future__ import annotations

import math

from prunekit.errors import PrunekitError
from prunekit.log import get_logger
from prunekit.solver.lr_policy import POLICIES

#: Fields each lr_policy reads besides base_lr (Caffe's SGDSolver::GetLearningRate).
POLICY_FIELDS = {"fixed": (), "step": ("gamma", "stepsize"), "exp": ("gamma",),
                 "inv": ("gamma", "power"), "multistep": ("gamma", "stepvalue"),
                 "poly": ("power",), "sigmoid": ("gamma", "stepsize")}


def validate_solver(param, path: str) -> None:
    """Raise PrunekitError for settings this version cannot honour or that make no sense."""
    if param.HasField("snapshot_format") and param.snapshot_format == param.HDF5:
        raise PrunekitError(f"{path}: snapshot_format: HDF5 is not supported; use BINARYPROTO")
    if param.snapshot_diff:
        raise PrunekitError(f"{path}: snapshot_diff is not supported (snapshots hold weights only)")
    if param.max_iter < 0:
        raise PrunekitError(f"{path}: max_iter must be >= 0, got {param.max_iter}")
    if param.iter_size < 1:
        raise PrunekitError(f"{path}: iter_size must be >= 1, got {param.iter_size}")
    if not math.isfinite(param.base_lr) or param.base_lr < 0:
        raise PrunekitError(f"{path}: base_lr must be a finite number >= 0, got {param.base_lr}")
    if not math.isfinite(param.momentum) or not 0 <= param.momentum < 1:
        raise PrunekitError(f"{path}: momentum must be in [0, 1), got {param.momentum} "
                            "(1 or more never forgets a gradient and diverges)")
    for field in ("snapshot", "display", "test_interval"):
        if getattr(param, field) < 0:
            raise PrunekitError(f"{path}: {field} must be >= 0, got {getattr(param, field)}")
    if param.average_loss < 1:
        raise PrunekitError(f"{path}: average_loss must be >= 1, got {param.average_loss}")
    validate_lr_policy(param, path)


def validate_lr_policy(param, path: str) -> None:
    """The policy is known and has the fields it needs (Caffe CHECKs ``stepsize > 0`` for
    "step"; a missing gamma/power/stepvalue would silently give lr 0 or a constant lr)."""
    policy = param.lr_policy or "fixed"
    if policy not in POLICIES:
        raise PrunekitError(f"{path}: unknown lr_policy '{policy}' (expected one of "
                            f"{', '.join(POLICIES)})")
    for field in POLICY_FIELDS[policy]:
        given = len(param.stepvalue) > 0 if field == "stepvalue" else param.HasField(field)
        if not given:
            raise PrunekitError(f'{path}: lr_policy "{policy}" needs {field}, which is not set')
    if policy == "step" and param.stepsize <= 0:
        raise PrunekitError(f'{path}: lr_policy "step" needs stepsize > 0, got {param.stepsize}')
    if policy == "multistep" and list(param.stepvalue) != sorted(param.stepvalue):
        raise PrunekitError(f"{path}: stepvalue must increase, got {list(param.stepvalue)}")
    if policy == "poly" and param.max_iter <= 0:
        raise PrunekitError(f'{path}: lr_policy "poly" needs max_iter > 0')
    if policy in ("step", "exp", "multistep") and not 0 < param.gamma <= 1:
        get_logger().warning('%s: lr_policy "%s" with gamma %g makes the rate %s', path, policy,
                             param.gamma, "grow" if param.gamma > 1 else "0 or negative")
