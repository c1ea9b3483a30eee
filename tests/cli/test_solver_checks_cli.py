"""Solver settings that used to train on silently: one line naming the file and the field,
exit 1, no traceback, nothing trained — through the real ``prunekit`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_helpers import run_cli
from prunekit import caffe
from tiny_solver import TINY_SOLVER, write_tiny


def _refused(proc, *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(error) == 1, proc.stderr
    for needle in needles:
        assert needle in error[0], (needle, error[0])
    assert "Iteration 0" not in proc.stderr


BAD_SOLVERS = {
    "negative base_lr": (("base_lr: 0.01", "base_lr: -0.01"), "base_lr"),
    "NaN base_lr": (("base_lr: 0.01", "base_lr: nan"), "base_lr"),
    "step without stepsize": (('lr_policy: "fixed"', 'lr_policy: "step"\ngamma: 0.1'), "stepsize"),
    "step without gamma": (('lr_policy: "fixed"', 'lr_policy: "step"\nstepsize: 2'), "gamma"),
    "inv without power": (('lr_policy: "fixed"', 'lr_policy: "inv"\ngamma: 0.1'), "power"),
    "multistep without stepvalue": (('lr_policy: "fixed"', 'lr_policy: "multistep"\ngamma: 0.1'),
                                    "stepvalue"),
    "unknown policy": (('lr_policy: "fixed"', 'lr_policy: "cosine"'), "lr_policy"),
    "momentum 1": (("momentum: 0.9", "momentum: 1"), "momentum"),
    "negative momentum": (("momentum: 0.9", "momentum: -0.5"), "momentum"),
}


@pytest.mark.parametrize("case", list(BAD_SOLVERS))
def test_bad_solver_field_is_refused(tmp_path: Path, case: str) -> None:
    (old, new), field = BAD_SOLVERS[case]
    assert old in TINY_SOLVER
    write_tiny(tmp_path, solver=TINY_SOLVER.replace(old, new))
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path)
    _refused(proc, "solver.prototxt", field)


def test_negative_iteration_in_a_solverstate_is_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path, "snapshot: 2\n", solver=TINY_SOLVER.replace("max_iter: 4", "max_iter: 2"))
    run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    path = tmp_path / "snap" / "tiny_iter_2.solverstate"
    state = caffe.read_solverstate(path)
    state.iter = -3
    caffe.write_solverstate(path, state)
    proc = run_cli(["train", "--solver", "solver.prototxt", "--snapshot", str(path)], tmp_path)
    _refused(proc, "tiny_iter_2.solverstate", "iter -3")


def test_data_layer_batch_size_zero_is_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    text = (tmp_path / "net.prototxt").read_text()
    start, end = text.index("layer {"), text.index('layer { name: "conv1"')
    data = ('layer { name: "data" type: "Data" top: "data" top: "label"\n'
            '  data_param { source: "no_such_lmdb" batch_size: 0 } }\n')
    (tmp_path / "net.prototxt").write_text(text[:start] + data + text[end:])
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path)
    _refused(proc, "net.prototxt", "layer 'data'", "batch_size")


def test_test_with_zero_iterations_is_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    proc = run_cli(["test", "--model", "net.prototxt", "--weights", "x.caffemodel",
                    "--iterations", "0"], tmp_path)
    _refused(proc, "--iterations 0")


def test_time_with_batch_size_zero_is_refused(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    proc = run_cli(["time", "--model", "net.prototxt", "--batch_size", "0"], tmp_path)
    _refused(proc, "--batch_size 0")


def test_pruning_a_net_of_zero_weights_is_refused_before_any_decision(tmp_path: Path) -> None:
    """The vgg16 case: a train_val without fillers and no --weights; every weight is 0."""
    write_tiny(tmp_path, 'prune_method: "L1_Row"\n', fillers=False)
    text = (tmp_path / "net.prototxt").read_text()
    (tmp_path / "net.prototxt").write_text(text.replace(
        'bottom: "data" top: "conv1"', 'bottom: "data" top: "conv1" prune_param { prune_ratio: 0.5 }'))
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path)
    _refused(proc, "solver.prototxt", "all-zero weights (conv1)", "--weights")
    assert "[app]" not in proc.stdout and "speedup" not in proc.stdout


def test_training_from_zero_weights_warns_naming_the_layers(tmp_path: Path) -> None:
    write_tiny(tmp_path, fillers=False, solver=TINY_SOLVER.replace("max_iter: 4", "max_iter: 1"))
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    warned = [line for line in proc.stderr.splitlines() if "all-zero weights" in line]
    assert len(warned) == 1 and "(conv1, ip1)" in warned[0], proc.stderr
    assert warned[0].startswith("W")
