"""Start ``prunekit train`` as a real subprocess and wait for lines of its log (signal tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_train(folder: Path, *args: str) -> subprocess.Popen:
    """``python -m prunekit.cli train --solver solver.prototxt ARGS`` in ``folder``."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "prunekit.cli", "train", "--solver",
                             "solver.prototxt", *args], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen, needle: str, seen: list[str]) -> None:
    """Read the log until a line contains ``needle`` (lines go to ``seen``)."""
    for line in proc.stderr:
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"the run ended before '{needle}':\n{''.join(seen[-30:])}")
