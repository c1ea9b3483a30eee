"""Pruning methods by ``prune_method``: the full name ("GL_Shape") or its method part ("Reg" of
"Reg_Col"), full names first.

Adding a method = one new file with a SolverHook class + one line here (and its name and units
in ``config.METHOD_ALIASES`` / ``config.METHOD_UNITS``).
"""

from __future__ import annotations

import importlib

from prunekit.errors import PrunekitError

METHODS: dict[str, str] = {
    "Reg": "prunekit.prune.increg.hook:IncReg",
    "SPP": "prunekit.prune.increg.spp:SPP",
    "Mag": "prunekit.prune.methods.magnitude:MagnitudeWeight",
    "L1": "prunekit.prune.methods.l1_filter:L1Filter",
    "FPGM": "prunekit.prune.methods.fpgm:FPGM",
    "SFP": "prunekit.prune.methods.sfp:SoftFilter",
    "GL": "prunekit.prune.methods.group_lasso:GroupLasso",
    "GL_Shape": "prunekit.prune.methods.kernel_shape:KernelShapeLasso",
    "Reg_Shape": "prunekit.prune.increg.kernel_shape:KernelShapeIncReg",
    "Slim": "prunekit.prune.methods.slimming:NetworkSlimming",
}


def make_method(config, solver, net_param, out=None):
    """The solver hook that runs ``config.prune_method`` on ``solver``'s TRAIN net."""
    target = METHODS.get(config.prune_method) or METHODS.get(config.method)
    if target is None:
        raise PrunekitError(
            f"{config.source}: prune_method '{config.prune_method}' is not available in this "
            f"version (available: {', '.join(sorted(METHODS))})")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, solver, net_param, out)
