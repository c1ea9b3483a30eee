"""Solver fields prunekit used to parse and drop, through the real ``prunekit train``:
``weights``, inline nets, ``debug_info``; and the one-line warning of a field with no effect."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cli_helpers import run_cli
from prunekit import caffe
from prunekit.caffe import caffe_pb2
from tiny_solver import TINY_SOLVER, tiny_net_text, write_tiny

FROZEN = TINY_SOLVER.replace("base_lr: 0.01", "base_lr: 0").replace("max_iter: 4", "max_iter: 1")


def _model(path: Path, value: float) -> None:
    """A caffemodel for the tiny net with every conv1/ip1 weight ``value`` and zero biases."""
    net = caffe_pb2.NetParameter(name="Tiny")
    for name, shape in (("conv1", (8, 1, 3, 3)), ("ip1", (10, 800))):
        layer = net.layer.add(name=name)
        layer.blobs.append(caffe.array_to_blob(np.full(shape, value, np.float32)))
        layer.blobs.append(caffe.array_to_blob(np.zeros(shape[0], np.float32)))
    caffe.write_caffemodel(path, net)


def _conv1(path: Path) -> np.ndarray:
    return caffe.layer_blobs(caffe.read_caffemodel(path))["conv1"][0]


def test_solver_weights_are_the_start(tmp_path: Path) -> None:
    _model(tmp_path / "start.caffemodel", 0.5)
    write_tiny(tmp_path, 'weights: "start.caffemodel"\n', solver=FROZEN)
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    assert "Finetuning from start.caffemodel" in proc.stderr
    assert np.all(_conv1(tmp_path / "snap" / "tiny_iter_1.caffemodel") == 0.5)


def test_weights_flag_takes_precedence_over_the_solver(tmp_path: Path) -> None:
    _model(tmp_path / "start.caffemodel", 0.5)
    _model(tmp_path / "flag.caffemodel", 0.25)
    write_tiny(tmp_path, 'weights: "start.caffemodel"\n', solver=FROZEN)
    proc = run_cli(["train", "--solver", "solver.prototxt", "--weights", "flag.caffemodel"],
                   tmp_path, check=True)
    assert "replaces the solver's weights (start.caffemodel)" in proc.stderr
    assert np.all(_conv1(tmp_path / "snap" / "tiny_iter_1.caffemodel") == 0.25)


def test_solver_weights_list_loads_in_order(tmp_path: Path) -> None:
    """Caffe: each weights entry may be a comma list; later files overwrite earlier ones."""
    _model(tmp_path / "a.caffemodel", 0.5)
    _model(tmp_path / "b.caffemodel", 0.125)
    write_tiny(tmp_path, 'weights: "a.caffemodel,b.caffemodel"\n', solver=FROZEN)
    run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    assert np.all(_conv1(tmp_path / "snap" / "tiny_iter_1.caffemodel") == 0.125)


def _inline(text: str) -> str:
    return "{\n" + text + "}\n"


def test_inline_net_param_trains_and_tests(tmp_path: Path) -> None:
    write_tiny(tmp_path, "test_iter: 2\ntest_interval: 2\n",
               net_line="net_param " + _inline(tiny_net_text()))
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    assert "Creating training net from net_param" in proc.stderr
    assert "Creating test net (#0) specified by net_param" in proc.stderr
    assert re.search(r"Iteration 2, Testing net \(#0\)", proc.stderr)
    assert "Test net output #0: loss" in proc.stderr
    assert (tmp_path / "snap" / "tiny_iter_4.caffemodel").is_file()


def test_inline_train_and_test_net_params(tmp_path: Path) -> None:
    line = ("train_net_param " + _inline(tiny_net_text()) + "test_net_param "
            + _inline(tiny_net_text()))
    write_tiny(tmp_path, "test_iter: 1\ntest_interval: 4\n", net_line=line)
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    assert "Creating training net from train_net_param" in proc.stderr
    assert "specified by test_net_param #0" in proc.stderr
    assert "Test net output #0: loss" in proc.stderr


def test_two_train_nets_are_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path, "net_param " + _inline(tiny_net_text()))
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "solver.prototxt: net_param and net both give the training net" in proc.stderr


def test_debug_info_prints_caffe_per_layer_lines(tmp_path: Path) -> None:
    _model(tmp_path / "start.caffemodel", 0.5)
    write_tiny(tmp_path, 'debug_info: true\ndisplay: 2\nweights: "start.caffemodel"\n',
               solver=TINY_SOLVER.replace("display: 1\n", ""))
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    lines = [line.split("] ", 1)[1] for line in proc.stderr.splitlines() if "] " in line]
    # the start weights, seen by the first forward: mean |w| = 0.5 exactly
    assert "    [Forward] Layer conv1, param blob 0 data: 0.5" in lines
    for pattern in (r"    \[Forward\] Layer conv1, top blob conv1 data: [0-9.e+-]+",
                    r"    \[Forward\] Layer relu1, top blob conv1 data: [0-9.e+-]+",
                    r"    \[Backward\] Layer ip1, bottom blob conv1 diff: [0-9.e+-]+",
                    r"    \[Backward\] Layer conv1, param blob 0 diff: [0-9.e+-]+",
                    r"    \[Backward\] All net params \(data, diff\): L1 norm = .*",
                    r"    \[Update\] Layer ip1, param 0 data: [0-9.e+-]+; diff: [0-9.e+-]+"):
        hits = [line for line in lines if re.fullmatch(pattern, line)]
        assert len(hits) == 2, (pattern, hits)  # display iterations 0 and 2 of 4 only
    forward = next(i for i, line in enumerate(lines) if "[Forward] Layer loss" in line)
    backward = next(i for i, line in enumerate(lines) if "[Backward] Layer loss" in line)
    update = next(i for i, line in enumerate(lines) if "[Update]" in line)
    assert forward < backward < update


def test_field_without_effect_is_warned_once(tmp_path: Path) -> None:
    write_tiny(tmp_path, "layer_wise_reduce: false\n")
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    warned = [line for line in proc.stderr.splitlines() if "layer_wise_reduce is ignored" in line]
    assert len(warned) == 1 and "solver.prototxt" in warned[0]
