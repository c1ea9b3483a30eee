"""PruneConfig: method resolution, the fork's dangerous defaults refused, per-layer settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from prunekit import caffe
from prunekit.caffe import caffe_pb2
from prunekit.errors import PrunekitError
from prunekit.prune.config import ACC_FLOOR, GIVEN_RATIO, TRAIN, PruneConfig

REPO = Path(__file__).resolve().parents[2]
LENET = REPO / "compression_experiments" / "lenet5" / "train_val.prototxt"
FORK_SOLVER = REPO / ".." / "shared" / "fixtures" / "caffe_increg_lenet5" / "solver.prototxt"

# The lenet5 pruning solver of the fork (reference 6.1), without the stock fields.
BASE = """
prune_method: "Reg_Col"  regularization_type: "Reg_Col"
AA: 0.00025  target_reg: 0.05
iter_size_prune: 1  iter_size_losseval: 2  iter_size_retrain: 2  iter_size_final_retrain: 8
acc_borderline: -1  losseval_interval: 1000  retrain_test_interval: 500
"""


def solver(extra: str = "", base: str = BASE):
    """``base`` with the fields of ``extra`` overriding it."""
    param = caffe.parse_solver_text(base, "solver.prototxt")
    param.MergeFrom(caffe.parse_solver_text(extra, "solver.prototxt"))
    return param


def config(extra: str = "", base: str = BASE) -> PruneConfig:
    return PruneConfig.from_solver(solver(extra, base), "solver.prototxt")


def error(extra: str = "", base: str = BASE) -> str:
    with pytest.raises(PrunekitError) as info:
        config(extra, base)
    return str(info.value)


# ----------------------------------------------------------------------------- proto fields

NEW_FIELDS = {
    "kk": (1100, 0.25), "prune_interval": (1101, 1), "prune_begin_iter": (1102, -1),
    "prune_ratio_begin_ave": (1103, 0.2), "standard_sparsity": (1104, 0.5),
    "mul_lr_decay": (1105, 0.1), "max_cnt_lr_decay": (1106, 4),
    "accuracy_gap_threshold": (1107, 5e-4), "incre_pr_bottomline": (1108, 0.01),
    "cnt_after_max_acc": (1109, 4), "coeff_acc_2_pr": (1110, 10), "tr_mul_bottom": (1111, 0.25),
    "standard_incre_pr": (1112, 0.05), "target_reg_cap": (1113, 10),
    "prune_log_verbose": (1114, False), "rank_restart_each_stage": (1115, False),
    "spp_score_decay": (1116, 0.9), "spp_delta": (1117, 0.0),
    "spp_mask_mode": (1118, "group-wise"),
}


def test_new_solver_fields_numbers_and_defaults():
    by_name = caffe_pb2.SolverParameter.DESCRIPTOR.fields_by_name
    numbers = [f.number for f in caffe_pb2.SolverParameter.DESCRIPTOR.fields]
    assert len(numbers) == len(set(numbers))
    empty = caffe_pb2.SolverParameter()
    for name, (number, default) in NEW_FIELDS.items():
        assert by_name[name].number == number, name
        value = getattr(empty, name)
        assert (value == default if isinstance(default, str)
                else value == pytest.approx(default, rel=1e-7)), name
    # each family's config sees the defaults as the decimals the fork compiled in
    configs = [config(), config(SPP), config(ZOO)]
    for name, (_, default) in NEW_FIELDS.items():
        readers = [c for c in configs if name in c.fields]
        assert readers, name
        for c in readers:
            assert getattr(c, name) == default, (c.prune_method, name)


SPP = 'prune_method: "SPP_Col" regularization_type: "L2"'
ZOO = 'prune_method: "L1_Row" regularization_type: "L2" acc_borderline: -1'


@pytest.mark.parametrize("extra, cls, family", [
    ("", "RegConfig", "Reg"), (SPP, "SppConfig", "SPP"), (ZOO, "ZooConfig", "L1"),
    ('prune_method: "Reg_Shape" regularization_type: "L2"', "RegShapeConfig", "Reg_Shape"),
    ('prune_method: "GL_Shape" regularization_type: "L2" sparsity_lambda: 1e-4', "ZooConfig",
     "GL_Shape"),
])
def test_family_config_holds_exactly_its_fields(extra, cls, family):
    """A family's config has one attribute per field prune/family_fields.py lists for it, and
    none for the fields other families read."""
    from prunekit.prune.config_fields import attr_name
    from prunekit.prune.family_fields import FAMILY_FIELDS, PRUNE_FIELDS
    c = config(extra)
    assert type(c).__name__ == cls
    assert c.fields == tuple(attr_name(f) for f in FAMILY_FIELDS[family])
    for field in PRUNE_FIELDS:
        assert hasattr(c, attr_name(field)) == (field in FAMILY_FIELDS[family]), field
    with pytest.raises(AttributeError):
        c.aa = 1.0


def test_presence_field_is_none_when_unset():
    assert config().baseline_acc is None
    assert config("baseline_acc: 0.99").baseline_acc == 0.99


def test_new_fields_parse_from_text():
    c = config("kk: 0.3 mul_lr_decay: 0.5 prune_log_verbose: true spp_mask_mode: 'element-wise'")
    assert (c.kk, c.mul_lr_decay, c.prune_log_verbose) == (0.3, 0.5, True)


# ----------------------------------------------------------------------------- method

def test_fork_lenet_solver():
    c = config()
    assert (c.prune_method, c.method, c.unit, c.decay_type) == ("Reg_Col", "Reg", "Col", "L2")
    assert (c.aa, c.target_reg, c.retrain_test_interval, c.losseval_interval) == (
        0.00025, 0.05, 500, 1000)
    assert c.mode == GIVEN_RATIO and c.given_ratio_mode


@pytest.mark.skipif(not FORK_SOLVER.is_file(), reason="shared fixtures missing")
def test_real_fork_solver_file():
    param = caffe.read_solver_prototxt(FORK_SOLVER)
    c = PruneConfig.from_solver(param, str(FORK_SOLVER))
    assert c.prune_method == "Reg_Col" and c.iter_size_final_retrain == 8


@pytest.mark.parametrize("pm, rt", [("None", "L2"), ("", "L2"), ("None", "L1")])
def test_no_pruning(pm, rt):
    param = caffe.parse_solver_text(f'prune_method: "{pm}" regularization_type: "{rt}"')
    assert PruneConfig.from_solver(param, "s") is None
    assert PruneConfig.from_solver(caffe_pb2.SolverParameter(), "s") is None


@pytest.mark.parametrize("pm, rt, expect", [
    ("Reg-rank_Col", "L2", ("Reg", "Col", "L2")),
    ("Reg_Row", "L1", ("Reg", "Row", "L1")),
    ("SPP_Col", "L2", ("SPP", "Col", "L2")),
    ("PP_Row", "L2", ("SPP", "Row", "L2")),
    ("None", "Reg_Col", ("Reg", "Col", "L2")),
    ("Reg_Col", "Reg-rank_Col", ("Reg", "Col", "L2")),
    ("SPP_Col", "SPP_Col", ("SPP", "Col", "L2")),
])
def test_method_resolution(pm, rt, expect):
    base = BASE.replace('prune_method: "Reg_Col"  regularization_type: "Reg_Col"', "")
    c = config(f'prune_method: "{pm}" regularization_type: "{rt}"', base)
    assert (c.method, c.unit, c.decay_type) == expect
    assert c.prune_method == f"{expect[0]}_{expect[1]}"


def test_regularization_type_alone_selects_method():
    base = BASE.replace('prune_method: "Reg_Col"', "")
    assert config(base=base).prune_method == "Reg_Col"


@pytest.mark.parametrize("pm, rt, words", [
    ("Reg_Col", "Reg_Row", ["Reg_Row", "conflicts", "Reg_Col"]),
    ("SPP_Col", "Reg_Col", ["Reg_Col", "conflicts", "SPP_Col"]),
    ("Reg_Weight", "L2", ["Reg_Weight", "Weight unit", "Reg_Col"]),
    ("AFP_Col", "L2", ["AFP_Col", "accepted", "SPP_Row"]),
    ("Reg", "L2", ["'Reg'", "accepted"]),
    ("Reg_Col", "AFP_Col", ["regularization_type 'AFP_Col'"]),
    ("Reg_Col", "Auto-balanced", ["Auto-balanced", "L1, L2"]),
])
def test_bad_methods(pm, rt, words):
    base = BASE.replace('prune_method: "Reg_Col"  regularization_type: "Reg_Col"', "")
    msg = error(f'prune_method: "{pm}" regularization_type: "{rt}"', base)
    assert msg.startswith("solver.prototxt: ")
    for word in words:
        assert word in msg


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("extra, words", [
    ("retrain_test_interval: 0", ["retrain_test_interval", "never ends"]),
    ("losseval_interval: -1", ["losseval_interval"]),
    ("AA: 0", ["AA must be > 0", "Reg_Col"]),
    ("target_reg: -1", ["target_reg must be > 0"]),
    ("acc_borderline: 0.98", ["baseline_acc"]),
    ("acc_borderline: 0.98 baseline_acc: 0.97", ["baseline_acc (0.97)", "acc_borderline (0.98)"]),
    ("iter_size_retrain: 0", ["iter_size_retrain must be >= 1"]),
    ("speedup: 0", ["speedup must be > 1"]),
    ("kk: 1", ["kk must be in (0, 1)"]),
    ("mul_lr_decay: 1.5", ["mul_lr_decay"]),
    ("standard_incre_pr: 0.005", ["standard_incre_pr", "incre_pr_bottomline"]),
    ("tr_mul_bottom: 1", ["tr_mul_bottom"]),
])
def test_dangerous_settings_refused(extra, words):
    msg = error(extra)
    for word in words:
        assert word in msg, msg


def test_losseval_zero_allowed_and_threshold_mode():
    c = config("losseval_interval: 0 acc_borderline: 0.98 baseline_acc: 0.99")
    assert c.losseval_interval == 0 and c.mode == ACC_FLOOR and c.baseline_acc == 0.99


def test_spp_checks():
    spp = 'prune_method: "SPP_Col" regularization_type: "L2"'
    base = BASE.replace('prune_method: "Reg_Col"  regularization_type: "Reg_Col"', "")
    c = config(spp + " target_reg: 0", base)  # target_reg is IncReg's, not needed by SPP
    assert c.method == "SPP" and c.spp_score_decay == 0.9
    assert "spp_mask_mode" in error(spp + " spp_mask_mode: 'random'", base)
    assert "Row unit" in error(spp + " spp_mask_mode: 'channel-wise'", base)
    assert "spp_delta" in error(spp + " spp_delta: -0.1", base)
    assert "spp_score_decay" in error(spp + " spp_score_decay: 1.5", base)


# ----------------------------------------------------------------------------- states

def test_iter_size_for_state_given_ratio():
    c = config()
    assert [c.iter_size_for_state(s) for s in ("prune", "losseval", "retrain", "final_retrain")] \
        == [1, 8, 8, 8]


def test_iter_size_for_state_acc_floor():
    c = config("acc_borderline: 0.98 baseline_acc: 0.99 iter_size_prune: 3")
    assert [c.iter_size_for_state(s) for s in ("prune", "losseval", "retrain", "final_retrain")] \
        == [3, 2, 2, 8]
    with pytest.raises(ValueError):
        c.iter_size_for_state("testing")


# ----------------------------------------------------------------------------- layers

def lenet():
    return caffe.read_net_prototxt(LENET)


def test_lenet_layer_settings_given_ratio():
    c = config()
    settings = c.layer_settings(lenet(), TRAIN)
    assert [(s.name, s.type, s.prune_ratio, s.prune_ratio_step, s.if_update_row_col)
            for s in settings] == [
        ("conv1", "Convolution", 0.9, 0.75, True), ("conv2", "Convolution", 0.9, 0.75, True),
        ("ip1", "InnerProduct", 0.0, 0.0, True), ("ip2", "InnerProduct", 0.0, 0.0, True)]
    assert c.initial_prune_ratios(settings) == [0.9, 0.9, 0.0, 0.0]


def test_initial_ratio_acc_floor_mode():
    c = config("acc_borderline: 0.98 baseline_acc: 0.99")
    settings = c.layer_settings(lenet())
    # min(0.75 * 0.2 / 0.5, 0.9) = 0.3 (0.4 x step)
    assert c.initial_prune_ratios(settings) == pytest.approx([0.3, 0.3, 0.0, 0.0])
    c2 = config("acc_borderline: 0.98 baseline_acc: 0.99 prune_ratio_begin_ave: 0.5")
    assert c2.initial_prune_ratios(settings)[0] == pytest.approx(0.75)


NET = """
name: "n"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "c1" type: "Convolution" bottom: "data" top: "c1"
        convolution_param { num_output: 4 kernel_size: 3 } %s }
layer { name: "c2" type: "Convolution" bottom: "c1" top: "c2"
        convolution_param { num_output: 4 kernel_size: 3 }
        prune_param { prune_ratio: 0.5 prune_ratio_step: 0.3 IF_update_row_col: false } }
layer { name: "c_test" type: "Convolution" bottom: "c2" top: "c3" include { phase: TEST }
        convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "c2" top: "fc"
        inner_product_param { num_output: 3 } }
"""


def net(c1_extra: str = ""):
    return caffe.parse_net_text(NET % c1_extra, "net.prototxt")


def test_phase_filter_flags_and_global_switch():
    settings = config().layer_settings(net())
    assert [s.name for s in settings] == ["c1", "c2", "fc"]
    assert [s.if_update_row_col for s in settings] == [True, False, True]
    off = config("IF_update_row_col: false").layer_settings(net())
    assert not any(s.if_update_row_col for s in off)
    test = config().layer_settings(net(), phase=1)
    assert [s.name for s in test] == ["c1", "c2", "c_test", "fc"]


@pytest.mark.parametrize("c1_extra, words", [
    ("prune_param { prune_ratio: 1 }", ["'c1'", "prune_ratio must be in [0, 1)"]),
    ("prune_param { prune_ratio: -0.1 }", ["'c1'", "prune_ratio"]),
    ("prune_param { prune_ratio: 0.5 prune_ratio_step: -1 }", ["'c1'", "prune_ratio_step"]),
])
def test_bad_layer_ratios(c1_extra, words):
    with pytest.raises(PrunekitError) as info:
        config().layer_settings(net(c1_extra), source="net.prototxt")
    for word in words:
        assert word in str(info.value)
    assert str(info.value).startswith("net.prototxt: layer 'c1'")


def test_threshold_mode_needs_step():
    text = NET % "prune_param { prune_ratio: 0.5 }"
    param = caffe.parse_net_text(text)
    assert config().layer_settings(param)[0].prune_ratio == 0.5  # given-ratio: fine
    with pytest.raises(PrunekitError, match=r"layer 'c1'.*prune_ratio_step must be > 0"):
        config("acc_borderline: 0.98 baseline_acc: 0.99").layer_settings(param)


def test_prune_param_on_other_layer_types():
    text = NET.replace('layer { name: "fc"',
                       'layer { name: "up" type: "Deconvolution" bottom: "c2" top: "up" '
                       'convolution_param { num_output: 2 kernel_size: 2 } '
                       'prune_param { prune_ratio: 0.5 } }\nlayer { name: "fc"') % ""
    with pytest.raises(PrunekitError, match=r"layer 'up' \(Deconvolution\).*prune_param"):
        config().layer_settings(caffe.parse_net_text(text))


def test_stage_increment():
    c = config()
    s = c.layer_settings(lenet())[0]
    assert c.stage_prune_ratio_increment(s, 0.1) == pytest.approx(0.15)


def test_docs_list_every_pruning_field():
    doc = (REPO / "docs" / "pruning-fields.md").read_text()
    solver_fields = [f.name for f in caffe_pb2.SolverParameter.DESCRIPTOR.fields
                     if f.number == 41 or 55 <= f.number <= 74 or 1100 <= f.number < 1200]
    layer_fields = [f.name for f in caffe_pb2.PruneParameter.DESCRIPTOR.fields]
    assert len(solver_fields) == 19 + 21
    for name in solver_fields + layer_fields + ["regularization_type"]:
        assert f"`{name}`" in doc, name


def test_prune_interval_checked_where_read():
    """SPP and the zoo read prune_interval and refuse 0; Reg does not read it (a warning, from
    prune/family_fields.py, says it is ignored)."""
    assert "prune_interval must be >= 1 (got 0)" in error(SPP + " prune_interval: 0")
    assert "prune_interval must be >= 1 (got 0)" in error(ZOO + " prune_interval: 0")
    assert not hasattr(config("prune_interval: 0"), "prune_interval")
