"""Helpers for the end-to-end tests: run the real ``prunekit`` CLI in a subprocess.

A module with its own name (not ``conftest``), so imports never pick up another folder's conftest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LENET_DIR = REPO / "compression_experiments" / "lenet5"
LENET_FIXTURE = (REPO / ".." / "shared" / "fixtures" / "caffe_increg_lenet5").resolve()


def run_cli(args: list[str], cwd: Path, timeout: int = 300, check: bool = False) -> subprocess.CompletedProcess:
    """``python -m prunekit.cli ARGS`` in ``cwd``; same interpreter as the tests."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "prunekit.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"prunekit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


#: The fixture solver's settings -> shorter ones for tests (test time only; the method is untouched).
FAST_FIXTURE_SOLVER = {
    "test_iter: 1000": "test_iter: 1",
    "display: 20": "display: 25",
    "snapshot: 1000": "snapshot: 50",
    "target_reg: 0.05": "target_reg: 0.005",
    "iter_size_final_retrain: 8": "iter_size_final_retrain: 1",
    "iter_size_retrain: 2": "iter_size_retrain: 1",
    "iter_size_losseval: 2": "iter_size_losseval: 1",
    "losseval_interval: 1000": "losseval_interval: 20",
    "retrain_test_interval: 500": "retrain_test_interval: 10",
}


def fixture_experiment(root: Path, fixture: Path, changes: dict[str, str] | None = None,
                       extra: str = "random_seed: 3\n") -> Path:
    """compression_experiments/lenet5 under ``root`` from the Caffe_IncReg fixture: its
    train_val unchanged, its solver with FAST_FIXTURE_SOLVER (then ``changes``) applied."""
    exp = root / "compression_experiments" / "lenet5"
    (exp / "weights").mkdir(parents=True)
    shutil.copy(fixture / "train_val.prototxt", exp / "train_val.prototxt")
    text = (fixture / "solver.prototxt").read_text()
    for old, new in {**FAST_FIXTURE_SOLVER, **(changes or {})}.items():
        assert old in text, old
        text = text.replace(old, new)
    (exp / "solver.prototxt").write_text(text + extra)
    return exp


def app_course(stdout: str) -> list[str]:
    """The [app] lines of a prune log without their timestamps."""
    lines = [line for line in stdout.splitlines() if "app" in line]
    return [re.sub(r" \(\d{4}/\d\d/\d\d-\d\d:\d\d\)", "", line) for line in lines]
