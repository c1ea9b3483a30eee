"""Prototxt reading/writing: the IncReg fixtures parse unchanged; errors name file and line."""

from __future__ import annotations

import pytest

from prunekit.caffe import (
    caffe_pb2,
    parse_net_text,
    parse_solver_text,
    read_net_prototxt,
    read_solver_prototxt,
    to_text,
    write_prototxt,
)
from prunekit.errors import PrunekitError


def test_increg_solver_parses_unchanged(lenet_fixture):
    solver = read_solver_prototxt(lenet_fixture / "solver.prototxt")
    assert solver.prune_method == "Reg_Col"
    assert solver.regularization_type == "Reg_Col"
    assert solver.AA == pytest.approx(0.00025)
    assert solver.target_reg == pytest.approx(0.05)
    assert (solver.iter_size_prune, solver.iter_size_losseval) == (1, 2)
    assert (solver.iter_size_retrain, solver.iter_size_final_retrain) == (2, 8)
    assert solver.acc_borderline == -1 and not solver.HasField("baseline_acc")
    assert (solver.losseval_interval, solver.retrain_test_interval) == (1000, 500)
    assert solver.max_iter == 10000000 and list(solver.test_iter) == [1000]
    assert solver.net == "compression_experiments/lenet5/train_val.prototxt"
    assert solver.solver_mode == caffe_pb2.SolverParameter.GPU
    assert not solver.test_initialization


def test_increg_net_parses_unchanged(lenet_fixture):
    net = read_net_prototxt(lenet_fixture / "train_val.prototxt")
    assert net.name == "LeNet"
    by_name = {layer.name: layer for layer in net.layer}
    assert [layer.name for layer in net.layer][2:] == [
        "conv1", "pool1", "conv2", "pool2", "ip1", "relu1", "ip2", "accuracy", "loss"]
    conv1 = by_name["conv1"]
    assert conv1.prune_param.prune_ratio == pytest.approx(0.9)
    assert conv1.prune_param.prune_ratio_step == pytest.approx(0.75)
    assert conv1.prune_param.IF_update_row_col  # default true
    assert not by_name["ip1"].HasField("prune_param")
    assert [p.lr_mult for p in conv1.param] == [1, 2]
    assert net.layer[0].include[0].phase == caffe_pb2.TRAIN
    assert net.layer[0].data_param.backend == caffe_pb2.DataParameter.LMDB
    assert net.layer[0].transform_param.scale == pytest.approx(1 / 256)


def test_syntax_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "c"\n  typo_field: 3\n}\n')
    with pytest.raises(PrunekitError) as err:
        read_net_prototxt(path)
    message = str(err.value)
    assert message.startswith(f"{path}:4:3: ")
    assert "typo_field" in message


def test_unbalanced_brace_reports_line(tmp_path):
    path = tmp_path / "solver.prototxt"
    path.write_text("base_lr: 0.01\n# comment\nmax_iter: 10\ntest_iter: {\n")
    with pytest.raises(PrunekitError, match=rf"^{path}:4:\d+: "):
        read_solver_prototxt(path)


def test_solver_field_in_net_file_is_an_error():
    with pytest.raises(PrunekitError, match=r"^train_val\.prototxt:2:1: .*base_lr"):
        parse_net_text('name: "n"\nbase_lr: 0.1\n', "train_val.prototxt")


def test_missing_file_names_path_and_kind(tmp_path):
    path = tmp_path / "nope.prototxt"
    with pytest.raises(PrunekitError, match=r"nope\.prototxt: no such file \(expected a Caffe "
                                            r"solver prototxt\)"):
        read_solver_prototxt(path)


def test_binary_file_as_prototxt_is_explained(tmp_path):
    path = tmp_path / "model.caffemodel"
    path.write_bytes(b"\x0a\x05LeNet\xff\xfe\x80")
    with pytest.raises(PrunekitError, match="not UTF-8"):
        read_net_prototxt(path)


def test_comments_and_spaced_colons_parse():
    solver = parse_solver_text("# header\nmax_iter : 5 # trailing\nprune_method: 'Reg_Row'\n")
    assert solver.max_iter == 5 and solver.prune_method == "Reg_Row"


def test_write_then_read_round_trip(tmp_path, lenet_fixture):
    net = read_net_prototxt(lenet_fixture / "train_val.prototxt")
    path = tmp_path / "copy.prototxt"
    write_prototxt(path, net)
    assert read_net_prototxt(path) == net
    assert path.read_text() == to_text(net)
    assert not [p for p in tmp_path.iterdir() if p.name != "copy.prototxt"]  # no temp files


def test_write_into_missing_folder_is_user_error(tmp_path):
    with pytest.raises(PrunekitError, match="does not exist"):
        write_prototxt(tmp_path / "no" / "x.prototxt", caffe_pb2.NetParameter(name="n"))


def test_to_text_prints_floats_shortest():
    text = to_text(caffe_pb2.SolverParameter(base_lr=0.0005, weight_decay=0.00025))
    assert "base_lr: 0.0005\n" in text and "weight_decay: 0.00025\n" in text
