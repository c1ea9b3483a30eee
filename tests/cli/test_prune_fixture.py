"""The Caffe_IncReg fixture solver, with only paths and intervals shortened, prunes conv1/conv2
columns to their prune_ratio, retrains and stops by itself; ``grep app`` shows the fork's course
(reference 4.1). A kill -9 in the middle of ``prune`` followed by ``--snapshot`` ends with the
same masks and the same [app] course."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import LENET_FIXTURE, app_course, fixture_experiment, run_cli
from prunekit import caffe

def _setup(root: Path, fixture: Path) -> Path:
    return fixture_experiment(root, fixture)


_app_course = app_course


def _train(root: Path, fixture: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli(["train", "--solver", "compression_experiments/lenet5/solver.prototxt",
                    *extra], root, timeout=900)


def _zero_columns(path: Path) -> dict[str, int]:
    blobs = caffe.layer_blobs(caffe.read_caffemodel(path))
    out = {}
    for name in ("conv1", "conv2"):
        w = blobs[name][0].reshape(blobs[name][0].shape[0], -1)
        out[name] = int((np.abs(w).sum(0) == 0).sum())
    return out


@pytest.fixture(scope="module")
def full_run(mnist_root: Path, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One uninterrupted pruning run of the fixture solver, shared by the tests below."""
    if not LENET_FIXTURE.is_dir():
        pytest.skip("shared fixtures missing")
    root = tmp_path_factory.mktemp("full_prune")
    (root / "data").mkdir()
    (root / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    _setup(root, LENET_FIXTURE)
    proc = _train(root, LENET_FIXTURE, "--weights", str(LENET_FIXTURE / "baseline_lenet5.caffemodel"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


def test_fixture_solver_prunes_retrains_and_stops(full_run) -> None:
    root, proc = full_run
    exp = root / "compression_experiments" / "lenet5"
    course = _app_course(proc.stdout)
    assert course[0] == "[app] Training starts, iter: 0, speedup: 1, compRatio: 1"
    kinds = [_kind(line) for line in course]
    order = ["starts", "stage", "ratio", "losseval", "going", "period", "done", "good", "incre",
             "cpr", "final", "resume", "task"]
    assert [k for k in order if k in kinds] == order, course
    positions = [kinds.index(k) for k in order]
    assert positions == sorted(positions), course
    assert "[app]    0 - pruned_ratio: 0.92" in course and "[app]    1 - pruned_ratio: 0.9" in course
    best = re.search(r"Output the best caffemodel, iter = (\d+)", proc.stdout).group(1)
    model = exp / "weights" / f"_stage1-retrain_iter_{best}.caffemodel"
    zeros = _zero_columns(model)
    assert zeros["conv1"] >= 23 and zeros["conv2"] >= 450, zeros
    assert f"Best model: compression_experiments/lenet5/weights/_stage1-retrain_iter_{best}.caffemodel" in proc.stderr
    # retention: stage models, the best retrain model and the latest periodic snapshot only
    names = sorted(p.name for p in (exp / "weights").iterdir())
    retrain = [n for n in names if "-retrain_iter_" in n]
    assert retrain == [f"_stage1-retrain_iter_{best}.caffemodel", f"_stage1-retrain_iter_{best}.solverstate"]
    assert "_stage0_iter_0.caffemodel" in names
    assert len([n for n in names if n.startswith("_stage1_iter_")]) == 2, names
    assert len([n for n in names if n.startswith("_iter_")]) == 2, names


def _kind(line: str) -> str:
    rules = [("Training starts", "starts"), ("Current pruning stage", "stage"),
             ("- pruned_ratio:", "ratio"), ("'losseval' done", "losseval"),
             ("going on, current acc", "going"), ("of current lr period finished", "period"),
             ("All 'retrain' done", "done"), ("still good", "good"), ("incre_pr:", "incre"),
             ("current_prune_ratio:", "cpr"), ("All layer prune finished", "final"),
             ("resuming from", "resume"), ("task done", "task")]
    for needle, kind in rules:
        if needle in line:
            return kind
    return "other"


def test_kill_during_prune_then_resume_matches(full_run, workdir: Path, lenet_fixture: Path) -> None:
    weights = str(lenet_fixture / "baseline_lenet5.caffemodel")
    root, full = full_run
    exp = root / "compression_experiments" / "lenet5"
    other = workdir
    exp2 = _setup(other, lenet_fixture)
    proc = subprocess.Popen([sys.executable, "-m", "prunekit.cli", "train", "--solver",
                             "compression_experiments/lenet5/solver.prototxt", "--weights", weights],
                            cwd=other, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "Iteration 75, loss" in line:
            break
    proc.send_signal(signal.SIGKILL)
    first_out = proc.communicate()[0]
    assert (exp2 / "weights" / "_iter_50.solverstate").is_file()
    assert "Current pruning stage" not in first_out  # killed while still in 'prune'
    resumed = _train(other, lenet_fixture, "--snapshot",
                     "compression_experiments/lenet5/weights/_iter_50.solverstate")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    assert _app_course(first_out) + _app_course(resumed.stdout) == _app_course(full.stdout)
    best = re.search(r"Output the best caffemodel, iter = (\d+)", full.stdout).group(1)
    for folder in (exp, exp2):
        assert (folder / "weights" / f"_stage1-retrain_iter_{best}.caffemodel").is_file()
    stage_models = sorted(p.name for p in (exp / "weights").glob("_stage1_iter_*.caffemodel"))
    assert len(stage_models) == 1
    a = caffe.layer_blobs(caffe.read_caffemodel(exp / "weights" / stage_models[0]))
    b = caffe.layer_blobs(caffe.read_caffemodel(exp2 / "weights" / stage_models[0]))
    for name in ("conv1", "conv2"):
        np.testing.assert_array_equal(a[name][0] == 0, b[name][0] == 0)
        np.testing.assert_array_equal(a[name][0], b[name][0])
