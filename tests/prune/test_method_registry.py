"""prune_method is accepted by what the method classes declare (ALIASES, UNITS), not by a
separate table: each registered class's declaration is what config.py accepts and refuses."""

from __future__ import annotations

import pytest

from prunekit import caffe
from prunekit.errors import PrunekitError
from prunekit.prune.config import PruneConfig
from prunekit.prune.increg.kernel_shape import KernelShapeIncReg
from prunekit.prune.methods.group_lasso import GroupLasso
from prunekit.prune.registry import declared
from prunekit.prune.units import SHAPE


def _config(pm: str) -> PruneConfig:
    text = (f'prune_method: "{pm}" AA: 0.00025 target_reg: 0.05 acc_borderline: -1 '
            "losseval_interval: 10 retrain_test_interval: 10 speedup: 2 sparsity_lambda: 0.0001")
    return PruneConfig.from_solver(caffe.parse_solver_text(text, "s.prototxt"), "s.prototxt")


def test_units_of_a_method_are_the_union_of_its_classes() -> None:
    aliases, units = declared()
    assert aliases["Reg-rank"] == "Reg" and aliases["PP"] == "SPP"
    assert units["GL"] == tuple(str(u) for u in GroupLasso.UNITS) + ("Shape",)
    assert KernelShapeIncReg.UNITS == (SHAPE,) and units["Reg"][-1] == "Shape"


@pytest.mark.parametrize("pm, method, unit", [("Reg-rank_Shape", "Reg", "Shape"),
                                              ("PP_Row", "SPP", "Row"),
                                              ("GL_Channel", "GL", "Channel")])
def test_declared_spellings_are_accepted(pm: str, method: str, unit: str) -> None:
    config = _config(pm)
    assert (config.method, config.unit, config.prune_method) == (method, unit, f"{method}_{unit}")


@pytest.mark.parametrize("pm", ["L1_Col", "Slim_Row", "Mag_Row", "Reg_Channel"])
def test_undeclared_units_are_refused(pm: str) -> None:
    with pytest.raises(PrunekitError, match=f"s.prototxt: prune_method '{pm}' is not a pruning "
                                            "method prunekit knows"):
        _config(pm)
