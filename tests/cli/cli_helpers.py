"""Helpers for the end-to-end tests: run the real ``prunekit`` CLI in a subprocess.

A module with its own name (not ``conftest``), so imports never pick up another folder's conftest.
"""

from __future__ import annotations

import os
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
