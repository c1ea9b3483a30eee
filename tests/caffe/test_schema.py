"""The committed caffe_pb2.py matches caffe.proto, and the schema keeps Caffe's wire numbers."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2

from prunekit.caffe import caffe_pb2

CAFFE_DIR = Path(caffe_pb2.__file__).resolve().parent
REPO = CAFFE_DIR.parents[2]


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools missing")
def test_committed_pb2_matches_proto(tmp_path):
    out = tmp_path / "caffe.desc"
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{CAFFE_DIR}",
         f"--descriptor_set_out={out}", str(CAFFE_DIR / "caffe.proto")],
        check=True,
    )
    regenerated = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    committed = descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb)
    _normalise(regenerated.message_type)
    _normalise(committed.message_type)
    assert regenerated == committed, "caffe_pb2.py is stale: run src/prunekit/caffe/regenerate.sh"


def test_gencode_floor_not_above_pyproject_floor():
    pyproject = (REPO / "pyproject.toml").read_text()
    floor = re.search(r'"protobuf>=([\d.]+)', pyproject).group(1)
    gencode = re.search(
        r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),"
        r"\s*(\d+),", (CAFFE_DIR / "caffe_pb2.py").read_text())
    floor_tuple = tuple(int(x) for x in floor.split("."))
    floor_tuple += (0,) * (3 - len(floor_tuple))
    assert tuple(int(x) for x in gencode.groups()) <= floor_tuple


_FLOAT = descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT


def _normalise(messages) -> None:
    """Remove what differs between protoc versions but not in meaning: json names (only in
    descriptor sets) and the spelling of float defaults ("1e-08" vs "9.99999994e-09")."""
    for message in messages:
        for field in message.field:
            field.ClearField("json_name")
            if field.type == _FLOAT and field.HasField("default_value"):
                field.default_value = repr(float(np.float32(field.default_value)))
        _normalise(message.nested_type)


def _numbers(message) -> dict[str, int]:
    return {f.name: f.number for f in message.DESCRIPTOR.fields}


def test_incregs_solver_fields_have_reference_numbers_and_defaults():
    numbers = _numbers(caffe_pb2.SolverParameter)
    expected = {
        "prune_method": 41, "AA": 55, "speedup": 56, "IF_update_row_col": 57, "IF_eswpf": 59,
        "target_reg": 61, "compRatio": 62, "IF_speedup_count_fc": 63, "IF_compr_count_conv": 64,
        "IF_scheme1_when_Reg_rank": 65, "acc_borderline": 66, "baseline_acc": 67,
        "retrain_test_interval": 68, "losseval_interval": 69, "iter_size_prune": 70,
        "iter_size_losseval": 71, "iter_size_retrain": 72, "iter_size_final_retrain": 73,
        "IF_use_acc1": 74, "regularization_type": 29,
    }
    assert {k: numbers[k] for k in expected} == expected
    solver = caffe_pb2.SolverParameter()
    assert (solver.prune_method, solver.speedup, solver.compRatio) == ("None", 10000, 10000)
    assert solver.IF_update_row_col and solver.IF_use_acc1 and solver.IF_scheme1_when_Reg_rank
    assert not solver.IF_eswpf and solver.iter_size_final_retrain == 1


def test_bvlc_solver_numbers_spot_check():
    numbers = _numbers(caffe_pb2.SolverParameter)
    assert numbers["net"] == 24 and numbers["test_iter"] == 3 and numbers["base_lr"] == 5
    assert numbers["iter_size"] == 36 and numbers["type"] == 40 and numbers["weights"] == 42
    assert numbers["solver_type"] == 30 and numbers["snapshot_format"] == 37


def test_solverstate_numbers():
    expected = {"iter": 1, "learned_net": 2, "history": 3, "current_step": 4,
                "history_score": 5, "history_punish": 6, "prune_state": 7,
                "stage_iter_prune_finished": 8, "last_feasible_prune_iter": 9,
                "current_prune_ratio": 10, "last_feasible_prune_ratio": 11,
                "last_infeasible_prune_ratio": 12, "prune_stage": 13, "prunekit_state": 1000}
    assert _numbers(caffe_pb2.SolverState) == expected
    assert caffe_pb2.SolverState().prune_stage == 1


def test_layer_and_net_numbers():
    layer = _numbers(caffe_pb2.LayerParameter)
    assert layer["prune_param"] == 148 and layer["convolution_param"] == 106
    assert layer["transform_param"] == 100 and layer["swish_param"] == 147
    assert 149 not in layer.values()
    net = _numbers(caffe_pb2.NetParameter)
    assert net["layer"] == 100 and net["layers"] == 2 and net["input_dim"] == 4
    assert _numbers(caffe_pb2.PruneParameter) == {
        "prune_ratio": 1, "IF_update_row_col": 2, "prune_ratio_step": 3}
    prune = caffe_pb2.PruneParameter()
    assert (prune.prune_ratio, prune.IF_update_row_col, prune.prune_ratio_step) == (0, True, 0)


def test_blob_proto_wire_bytes_match_caffe():
    # shape{dim:2} = field 7 (len), dim packed field 1; data packed field 5.
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.append(2)
    blob.data.extend([1.0, 2.0])
    assert blob.SerializeToString() == (
        b"\x2a\x08\x00\x00\x80\x3f\x00\x00\x00\x40" + b"\x3a\x03\x0a\x01\x02"
    ) or blob.SerializeToString() == (
        b"\x3a\x03\x0a\x01\x02" + b"\x2a\x08\x00\x00\x80\x3f\x00\x00\x00\x40"
    )
