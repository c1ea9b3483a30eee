"""End-to-end helpers: run the real ``prunekit`` CLI in a subprocess inside a scratch folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A folder holding data/mnist/{mnist_train_lmdb,mnist_test_lmdb} made by the real CLI."""
    root = tmp_path_factory.mktemp("mnist_root")
    run_cli(["data", "mnist", "--out", "data/mnist"], root, check=True)
    return root


@pytest.fixture
def workdir(tmp_path: Path, mnist_root: Path) -> Path:
    """A scratch folder whose data/mnist points at the shared LMDBs."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    return tmp_path
