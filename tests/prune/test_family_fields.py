"""A pruning field a solver sets but its method family ignores gets one warning naming the field
and why (issue 18): IncReg's prune_interval / prune_begin_iter (Caffe_IncReg fixed them), the
fork's stage fields under a method without stages; fields a family reads get none."""

from __future__ import annotations

import pytest

from prunekit import caffe
from prunekit.prune.config import PruneConfig
from prunekit.prune.family_fields import FAMILY_FIELDS, PRUNE_FIELDS

REG_COL = """prune_method: "Reg_Col" AA: 0.00025 target_reg: 0.05 acc_borderline: -1
losseval_interval: 10 retrain_test_interval: 10 speedup: 2"""
L1_ROW = 'prune_method: "L1_Row" prune_rounds: 2 prune_interval: 10'


def _warnings(text: str, capsys) -> list[str]:
    """The glog warning lines (W...) config building writes to stderr, prefix cut."""
    capsys.readouterr()
    PruneConfig.from_solver(caffe.parse_solver_text(text, "s.prototxt"), "s.prototxt")
    return [line.split("] ", 1)[1] for line in capsys.readouterr().err.splitlines()
            if line.startswith("W")]


def test_increg_warns_once_about_prune_interval(capsys) -> None:
    got = _warnings(REG_COL + " prune_interval: 5", capsys)
    assert len(got) == 1, got
    assert got[0].startswith("s.prototxt: prune_interval is set but prune_method 'Reg_Col' "
                             "does not use it (Caffe_IncReg fixed prune_interval at 1: λ rises every iteration)")


def test_increg_warns_about_prune_begin_iter(capsys) -> None:
    got = _warnings(REG_COL + " prune_begin_iter: 100", capsys)
    assert len(got) == 1 and "prune_begin_iter is set" in got[0] and "'Reg_Col'" in got[0], got


def test_stage_fields_under_a_zoo_method_are_named(capsys) -> None:
    got = _warnings(L1_ROW + " losseval_interval: 200 iter_size_retrain: 2", capsys)
    assert [m.split(" is set")[0] for m in got] == ["s.prototxt: iter_size_retrain",
                                                   "s.prototxt: losseval_interval"]
    assert all("'L1_Row'" in m and "no prune stages" in m for m in got)


@pytest.mark.parametrize("text", [REG_COL, L1_ROW, REG_COL.replace("Reg_Col", "SPP_Col")
                                  + " prune_interval: 3"])
def test_fields_the_family_reads_give_no_warning(text: str, capsys) -> None:
    assert _warnings(text, capsys) == []


def test_every_family_reads_only_real_solver_fields() -> None:
    from prunekit.caffe import caffe_pb2
    names = set(caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name)
    assert set(PRUNE_FIELDS) <= names
    assert "prune_interval" not in FAMILY_FIELDS["Reg"] and "prune_interval" in FAMILY_FIELDS["SPP"]
