"""The README's main job: ``sh compression_experiments/lenet5/train.sh`` on a fresh checkout
makes the data, trains the baseline to ≥ 97% on the 1,000 test digits, then prunes it inside the
solver (IncReg, given-ratio mode, speedup 4) with the Caffe_IncReg log layout
(weights/log_<stamp>_acc.txt and _prune.txt). The same folder then runs SPP_Col. For both, the
best model is checked independently of the logs: its zero columns give ≥ 4x fewer conv MACs and
``prunekit test`` scores it within 1 point of the baseline."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import matplotlib.image as plt_image
import numpy as np
import pytest

from cli_helpers import LENET_DIR, run_cli

from prunekit import caffe

#: LeNet-5 conv output sizes at 28x28 input (H x W per image): conv1 24x24, conv2 8x8.
CONV_HW = {"conv1": 24 * 24, "conv2": 8 * 8}


def _accuracies(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"accuracy = ([\d.]+)", log)]


def _conv_speedup(model: Path) -> float:
    """Dense conv MACs / MACs left when zero rows and columns of the weight matrices are skipped."""
    blobs = caffe.layer_blobs(caffe.read_caffemodel(model))
    dense = left = 0
    for name, hw in CONV_HW.items():
        w = np.abs(blobs[name][0].reshape(blobs[name][0].shape[0], -1))
        dense += w.size * hw
        left += int((w.sum(0) > 0).sum()) * int((w.sum(1) > 0).sum()) * hw
    return dense / left


def _run_train_sh(root: Path, env: dict[str, str], timeout: float = 900
                  ) -> subprocess.CompletedProcess:
    """train.sh in its own process group: on a timeout the whole group is killed, so the
    ``prunekit train`` it started does not outlive the test (subprocess.run kills only ``sh``)."""
    proc = subprocess.Popen(["sh", "compression_experiments/lenet5/train.sh"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _run(root: Path, solver: str) -> tuple[str, str, str]:
    """train.sh with ``solver``: (acc log, prune log, train.sh's own stderr)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               SOLVER=solver)
    before = set((root / "compression_experiments/lenet5/weights").glob("log_*_acc.txt")) \
        if (root / "compression_experiments/lenet5/weights").is_dir() else set()
    proc = _run_train_sh(root, env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights = root / "compression_experiments/lenet5/weights"
    new = sorted(set(weights.glob("log_*_acc.txt")) - before)
    if not new:  # same minute as the previous run: the logs were overwritten
        new = sorted(weights.glob("log_*_acc.txt"))[-1:]
    assert re.fullmatch(r"log_\d{8}-\d{4}_acc\.txt", new[-1].name)
    acc = new[-1].read_text()
    figure = new[-1].with_name(new[-1].name.replace("_acc.txt", ".png"))
    image = plt_image.imread(figure)              # train.sh plots the run next to its logs
    assert image.shape[:2] == (400, 1300) and float(np.var(image[..., :3])) > 1e-3
    prune = new[-1].with_name(new[-1].name.replace("_acc.txt", "_prune.txt")).read_text()
    return acc, prune, proc.stderr


#: The SPP and Reg_Row runs test with a test every 50 iterations instead of 100 (CI time); the
#: method and its pruning settings are the shipped ones. The Reg_Col run uses its file unchanged.
QUICKER_RETRAIN = {"retrain_test_interval: 100": "retrain_test_interval: 50",
                   "losseval_interval: 200": "losseval_interval: 100"}


def _experiment_folder(root: Path) -> Path:
    """``root`` laid out as a fresh checkout: compression_experiments/lenet5 with train.sh, the
    nets and the solvers (SPP and Reg_Row with QUICKER_RETRAIN applied)."""
    exp = root / "compression_experiments" / "lenet5"
    exp.mkdir(parents=True)
    for name in ("train.sh", "train_val.prototxt", "solver.prototxt", "baseline_solver.prototxt"):
        shutil.copy(LENET_DIR / name, exp / name)
    for name in ("solver_spp.prototxt", "solver_row.prototxt"):
        text = (LENET_DIR / name).read_text()
        for old, new in QUICKER_RETRAIN.items():
            assert old in text, (name, old)
            text = text.replace(old, new)
        (exp / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def increg_run(tmp_path_factory) -> tuple[Path, str, str, str]:
    """The README's first command in a fresh folder: (root, acc log, prune log, train.sh's
    stderr) of
    ``sh compression_experiments/lenet5/train.sh`` (data, baseline, IncReg)."""
    root = _experiment_folder(tmp_path_factory.mktemp("lenet5_exp"))
    return (root, *_run(root, "solver.prototxt"))


@pytest.fixture
def experiment(tmp_path: Path, increg_run: tuple[Path, str, str, str]) -> Path:
    """A fresh experiment folder of its own holding only the data and the baseline (model and
    log) that ``increg_run`` trained: what a user has after the first command, without the
    IncReg run's snapshots and logs, whichever tests ran before."""
    source = increg_run[0]
    root = _experiment_folder(tmp_path / "checkout")
    (root / "data").mkdir()
    (root / "data" / "mnist").symlink_to(source / "data" / "mnist")
    weights = root / "compression_experiments/lenet5/weights"
    weights.mkdir()
    for name in ("baseline_lenet5.caffemodel", "log_baseline.txt"):
        shutil.copy(source / "compression_experiments/lenet5/weights" / name, weights / name)
    return root


def _check_pruned(root: Path, acc_log: str, prune_log: str, baseline_acc: float) -> str:
    assert "Finetuning from compression_experiments/lenet5/weights/baseline_lenet5.caffemodel" in acc_log
    if "Use GPU with device ID" not in acc_log:  # solver_mode: GPU on a machine without CUDA
        assert "CUDA is not available: running on the CPU" in acc_log
    assert re.search(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ \S+:\d+\] Iteration 100, loss = ", acc_log, re.M)
    assert "[app] Training starts, iter: 0" in prune_log
    assert "'Given pr to get acc' task done!" in prune_log
    logged = float(re.search(r"stage = 1\) finished.*? speedup: ([\d.]+)", prune_log).group(1))
    model = re.search(r"Pruning done\. Best model: (\S+) \(accuracy ([\d.]+)\)", acc_log)
    path = root / model.group(1)
    speedup = _conv_speedup(path)
    assert speedup >= 4.0 and speedup == pytest.approx(logged, rel=1e-3), (speedup, logged)
    # score the best model afresh on the 1,000 test digits
    proc = run_cli(["test", "--model", "compression_experiments/lenet5/train_val.prototxt",
                    "--weights", model.group(1), "--iterations", "10"], root, check=True)
    scored = _accuracies(proc.stderr)[-1]
    assert scored == pytest.approx(float(model.group(2)), abs=1e-6)
    assert scored >= baseline_acc - 0.01, (scored, baseline_acc)
    return model.group(1)


def test_train_sh_from_scratch_prunes_with_increg(increg_run: tuple[Path, str, str, str]) -> None:
    experiment, acc_log, prune_log, terminal = increg_run
    assert "train.sh: training the baseline" in terminal
    assert (experiment / "data" / "mnist" / "mnist_train_lmdb").is_dir()
    weights = experiment / "compression_experiments/lenet5/weights"
    baseline = caffe.layer_blobs(caffe.read_caffemodel(weights / "baseline_lenet5.caffemodel"))
    assert baseline["conv2"][0].shape == (50, 20, 5, 5)
    baseline_acc = _accuracies((weights / "log_baseline.txt").read_text())[-1]
    assert baseline_acc >= 0.97
    assert "reduce reg:" in prune_log or "columns' left reg not cleared" in prune_log
    _check_pruned(experiment, acc_log, prune_log, baseline_acc)


def test_same_folder_prunes_with_spp(experiment: Path) -> None:
    weights = experiment / "compression_experiments/lenet5/weights"
    acc_log, prune_log, terminal = _run(experiment, "solver_spp.prototxt")
    assert "train.sh: training the baseline" not in terminal  # the baseline is reused
    assert "pruning with compression_experiments/lenet5/solver_spp.prototxt" in terminal
    assert 'prune_method: "SPP_Col"' in acc_log
    baseline_acc = _accuracies((weights / "log_baseline.txt").read_text())[-1]
    _check_pruned(experiment, acc_log, prune_log, baseline_acc)


def test_filter_pruning_compacts_to_a_smaller_model_with_the_same_accuracy(experiment: Path) -> None:
    """Reg_Row removes whole filters, so `prunekit compact` realises the 4x in the files."""
    weights = experiment / "compression_experiments/lenet5/weights"
    acc_log, prune_log, terminal = _run(experiment, "solver_row.prototxt")
    assert "train.sh: training the baseline" not in terminal
    baseline_acc = _accuracies((weights / "log_baseline.txt").read_text())[-1]
    best = _check_pruned(experiment, acc_log, prune_log, baseline_acc)
    net = "compression_experiments/lenet5/train_val.prototxt"
    out = run_cli(["compact", "--model", net, "--weights", best, "--out-model", "small.prototxt",
                   "--out-weights", "small.caffemodel"], experiment, check=True).stdout
    realised = float(re.search(r"^conv MACs:.*realised speedup ([\d.]+)x", out, re.M).group(1))
    assert realised >= 4.0, out
    scores = [_accuracies(run_cli(["test", "--model", m, "--weights", w, "--iterations", "10"],
                                  experiment, check=True).stderr)[-1]
              for m, w in ((net, best), ("small.prototxt", "small.caffemodel"))]
    assert scores[0] == scores[1], scores
