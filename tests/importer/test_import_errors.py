"""What cannot come in says so in one line, through the real CLI, and leaves no file behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from cli_helpers import run_cli  # noqa: E402

onnx = pytest.importorskip("onnx")
helper = onnx.helper


def _model(nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _value(name: str, shape):
    return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shape)


def _import(tmp_path: Path, model, *extra: str):
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    proc = run_cli(["import", "--onnx", str(path), "--out-model", str(tmp_path / "d.prototxt"),
                    "--out-weights", str(tmp_path / "d.caffemodel"), *extra], tmp_path)
    return proc


def _one_error_line(proc) -> str:
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def _nothing_written(tmp_path: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_unsupported_op_names_node_op_and_supported_list(tmp_path):
    w = onnx.numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv_a", pads=[1, 1, 1, 1]),
             helper.make_node("Erf", ["c"], ["e"], name="my_erf"),
             helper.make_node("Relu", ["e"], ["y"], name="relu_b")]
    proc = _import(tmp_path, _model(nodes, [_value("x", [1, 3, 8, 8])],
                                    [_value("y", [1, 4, 8, 8])], [w]))
    line = _one_error_line(proc)
    assert "node 'my_erf'" in line and "'Erf'" in line
    assert "supported:" in line and "Conv" in line and "BatchNormalization" in line
    _nothing_written(tmp_path)


def test_general_transpose_is_refused_naming_the_node(tmp_path):
    nodes = [helper.make_node("Transpose", ["x"], ["y"], name="swap_hw", perm=[0, 1, 3, 2])]
    proc = _import(tmp_path, _model(nodes, [_value("x", [1, 2, 3, 4])],
                                    [_value("y", [1, 2, 4, 3])]))
    line = _one_error_line(proc)
    assert "node 'swap_hw' (Transpose)" in line and "channel shuffle" in line
    _nothing_written(tmp_path)


def test_dynamic_spatial_input_needs_input_shape(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    model = _model(nodes, [_value("x", ["N", 3, "H", "W"])], [_value("y", ["N", 3, "H", "W"])])
    line = _one_error_line(_import(tmp_path, model))
    assert "input 'x'" in line and "--input-shape" in line
    _nothing_written(tmp_path)
    proc = _import(tmp_path, model, "--input-shape", "2,3,5,7")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "d.prototxt").read_text()
    assert "dim: 2\n" in text and "dim: 7\n" in text


def test_torchvision_flag_works_or_says_why_in_one_line(tmp_path):
    """Where torchvision imports (a CUDA torch) the flag imports the net; next to the CPU
    torch its compiled ops fail to register and the CLI says so in one line."""
    probe = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True)
    proc = run_cli(["import", "--torchvision", "squeezenet1_1", "--input-shape", "1,3,64,64",
                    "--out-model", str(tmp_path / "d.prototxt"),
                    "--out-weights", str(tmp_path / "d.caffemodel")], tmp_path)
    if probe.returncode == 0:
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / "d.caffemodel").stat().st_size > 0
        return
    line = _one_error_line(proc)
    assert "torchvision cannot be imported" in line and "--onnx" in line
    assert list(tmp_path.iterdir()) == []


def test_missing_train_val_folder_is_refused_before_anything_is_written(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    proc = _import(tmp_path, _model(nodes, [_value("x", [1, 3, 4, 4])], [_value("y", None)]),
                   "--train-val", str(tmp_path / "missing" / "tv.prototxt"),
                   "--train-source", "a", "--test-source", "b")
    line = _one_error_line(proc)
    assert "missing" in line and "does not exist" in line
    _nothing_written(tmp_path)
