"""Pruning methods by ``prune_method``: the full name ("GL_Shape") or its method part ("Reg" of
"Reg_Col"), full names first.

Adding a method = one new file with a SolverHook class that declares its ``ALIASES`` (spellings of
the method part), ``UNITS`` (prune/units.py) and ``CONFIG`` (its family's config class, a
prune/config.py PruneConfig) + one line here; ``config.py`` accepts a ``prune_method`` by what the
classes declare (``declared``) and builds the class's ``CONFIG`` (``config_class``).
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


def _class(target: str):
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def declared() -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(spelling -> method, method -> unit names) as the method classes declare them, in the
    order of METHODS; a method is its class's first alias ("Reg" for "Reg-rank")."""
    aliases: dict[str, str] = {}
    units: dict[str, tuple[str, ...]] = {}
    for target in METHODS.values():
        cls = _class(target)
        method = cls.ALIASES[0]
        for spelling in cls.ALIASES:
            aliases.setdefault(spelling, method)
        units[method] = units.get(method, ()) + tuple(str(u) for u in cls.UNITS)
    return aliases, units


def config_class(method: str, prune_method: str):
    """The config class (prune/config.py PruneConfig subclass) the method's hook class declares."""
    return _class(METHODS.get(prune_method) or METHODS[method]).CONFIG


def make_method(config, solver, net_param, out=None):
    """The solver hook that runs ``config.prune_method`` on ``solver``'s TRAIN net."""
    target = METHODS.get(config.prune_method) or METHODS.get(config.method)
    if target is None:
        raise PrunekitError(
            f"{config.source}: prune_method '{config.prune_method}' is not available in this "
            f"version (available: {', '.join(sorted(METHODS))})")
    return _class(target)(config, solver, net_param, out)
