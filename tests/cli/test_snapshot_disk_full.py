"""A snapshot that cannot be written (full disk; a file size limit) ends the run with one line
naming the file and the reason; the previous snapshot is intact and resumes; no temp file stays.

``tmpfs``: the snapshot folder is a small tmpfs (mounted here when the tests run as root, or
where ``mount`` is otherwise allowed), remounted just above what the first snapshot used, so the
next one meets ENOSPC. ``fsize``: the same with RLIMIT_FSIZE below the model's size, so the
write fails with EFBIG (the process ignores SIGXFSZ, as a shell's ``ulimit -f`` run would need);
it runs everywhere.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_cli
from prunekit import caffe
from tiny_solver import TINY_SOLVER, write_tiny


def _mount_tmpfs(folder: Path, size: str) -> bool:
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True)
    return proc.returncode == 0


def _first_snapshot(folder: Path) -> tuple[Path, bytes, bytes]:
    write_tiny(folder, "snapshot: 2\n")
    text = (folder / "solver.prototxt").read_text()
    (folder / "solver.prototxt").write_text(text.replace("max_iter: 4", "max_iter: 2"))
    run_cli(["train", "--solver", "solver.prototxt"], folder, check=True)
    state = folder / "snap" / "tiny_iter_2.solverstate"
    model = folder / "snap" / "tiny_iter_2.caffemodel"
    (folder / "solver.prototxt").write_text(text)  # the resumed run goes on to iteration 4
    return state, state.read_bytes(), model.read_bytes()


def _resume(folder: Path, state: Path, limit_bytes: int | None) -> subprocess.CompletedProcess:
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "prunekit.cli", "train", "--solver",
                           "solver.prototxt", "--snapshot", str(state)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300,
                          preexec_fn=limit if limit_bytes else None)


def _assert_clean_failure(proc, folder: Path, state: Path, old_state: bytes,
                          old_model: bytes, reason: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1, proc.stderr
    assert "tiny_iter_4." in errors[0] and reason in errors[0], errors[0]
    assert "earlier snapshots are untouched" in errors[0]
    snap = folder / "snap"
    assert state.read_bytes() == old_state
    assert (snap / "tiny_iter_2.caffemodel").read_bytes() == old_model
    assert sorted(p.name for p in snap.iterdir()) == ["tiny_iter_2.caffemodel",
                                                      "tiny_iter_2.solverstate"]


def test_full_tmpfs(tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    snap.mkdir()
    if not _mount_tmpfs(snap, "4m"):
        pytest.skip("cannot mount a tmpfs here (not root); test_file_size_limit covers the path")
    try:
        state, old_state, old_model = _first_snapshot(tmp_path)
        used = sum(p.stat().st_size for p in snap.iterdir())
        remount = subprocess.run(["mount", "-o", f"remount,size={used + used // 4}", str(snap)],
                                 capture_output=True, text=True)
        assert remount.returncode == 0, remount.stderr
        proc = _resume(tmp_path, state, None)
        _assert_clean_failure(proc, tmp_path, state, old_state, old_model,
                              "No space left on device")
        again = _resume(tmp_path, state, None)  # the intact snapshot still resumes (and fails
        assert "Restoring previous solver status" in again.stderr  # at the same place)
        assert "Iteration 2, loss" in again.stderr and again.returncode == 1
    finally:
        subprocess.run(["umount", str(snap)], capture_output=True)


def test_file_size_limit(tmp_path: Path) -> None:
    state, old_state, old_model = _first_snapshot(tmp_path)
    proc = _resume(tmp_path, state, len(old_model) // 2)
    _assert_clean_failure(proc, tmp_path, state, old_state, old_model, "File too large")
    snapshot = caffe.read_solverstate(state)
    assert snapshot.iter == 2 and snapshot.prunekit_state
