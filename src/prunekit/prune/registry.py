"""Pruning methods by the method part of ``prune_method`` ("Reg" of "Reg_Col").

Adding a method = one new file with a SolverHook class + one line here.
"""

from __future__ import annotations

import importlib

from prunekit.errors import PrunekitError

METHODS: dict[str, str] = {
    "Reg": "prunekit.prune.increg:IncReg",
    "SPP": "prunekit.prune.spp:SPP",
}


def make_method(config, solver, net_param, out=None):
    """The solver hook that runs ``config.method`` on ``solver``'s TRAIN net."""
    target = METHODS.get(config.method)
    if target is None:
        raise PrunekitError(
            f"{config.source}: prune_method '{config.prune_method}' is not available in this "
            f"version (available: {', '.join(f'{m}_Col, {m}_Row' for m in METHODS)})")
    module_name, class_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, solver, net_param, out)
