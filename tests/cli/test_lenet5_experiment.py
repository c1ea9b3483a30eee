"""The README's main job: ``sh compression_experiments/lenet5/train.sh`` on a fresh checkout
makes the data, trains the baseline to ≥ 97% on the 1,000 test digits, and runs the solver with
the Caffe_IncReg log layout (weights/log_<stamp>_acc.txt and _prune.txt)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from cli_helpers import LENET_DIR

from prunekit import caffe


def _accuracies(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"Test net output #0: accuracy = ([\d.]+)", log)]


def test_train_sh_from_scratch(tmp_path: Path) -> None:
    exp = tmp_path / "compression_experiments" / "lenet5"
    exp.mkdir(parents=True)
    for name in ("train.sh", "train_val.prototxt", "solver.prototxt", "baseline_solver.prototxt"):
        shutil.copy(LENET_DIR / name, exp / name)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.run(["sh", "compression_experiments/lenet5/train.sh"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    assert (tmp_path / "data" / "mnist" / "mnist_train_lmdb").is_dir()
    weights = exp / "weights"
    baseline = caffe.layer_blobs(caffe.read_caffemodel(weights / "baseline_lenet5.caffemodel"))
    assert baseline["conv2"][0].shape == (50, 20, 5, 5)
    baseline_log = (weights / "log_baseline.txt").read_text()
    assert _accuracies(baseline_log)[-1] >= 0.97, baseline_log[-2000:]

    acc_logs = list(weights.glob("log_*_acc.txt"))
    prune_logs = list(weights.glob("log_*_prune.txt"))
    assert len(acc_logs) == 1 and len(prune_logs) == 1
    assert re.fullmatch(r"log_\d{8}-\d{4}_acc\.txt", acc_logs[0].name)
    acc_log = acc_logs[0].read_text()
    assert "Finetuning from compression_experiments/lenet5/weights/baseline_lenet5.caffemodel" in acc_log
    assert re.search(r"^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ \S+:\d+\] Iteration 20, loss = ", acc_log, re.M)
    assert "Optimization Done." in acc_log
    if "Use GPU with device ID" not in acc_log:  # solver_mode: GPU on a machine without CUDA
        assert "CUDA is not available: running on the CPU" in acc_log
    finetuned = _accuracies(acc_log)
    assert len(finetuned) == 3 and min(finetuned) >= 0.97, finetuned
    assert (weights / "_iter_1000.caffemodel").is_file()
    assert (weights / "_iter_1000.solverstate").is_file()
