"""SIGKILL during a pruning run, snapshot writes included: never a truncated .caffemodel or
.solverstate under a final name; the newest snapshot resumes; stale temp files are removed.

A short SFP_Row run (masks re-chosen every iteration, so the solverstate carries live pruning
state) snapshots every iteration, so much of its time is spent writing snapshots. It is
SIGKILLed, in turn, the moment a snapshot temp file exists (inside a write) and at a seeded
random moment after a snapshot began; resumed from the newest snapshot, killed again, ...
(at least 3 kills, more while 30 s last), then resumed and run 3 iterations further.
"""

from __future__ import annotations

import random
import re
import signal
import time
from pathlib import Path

import numpy as np

from cli_helpers import run_cli
from prunekit import caffe
from tiny_solver import TINY_SOLVER, write_tiny
from train_process_helpers import start_train, wait_for

#: A 800 -> 512 layer makes each snapshot ~3 MB, so a kill often lands inside a write.
WIDE = ('layer { name: "ip0" type: "InnerProduct" bottom: "conv1" top: "ip0"\n'
        '  inner_product_param { num_output: 512 weight_filler { type: "xavier" } } }\n'
        'layer { name: "ip1" type: "InnerProduct" bottom: "ip0" top: "ip1"')
PRUNING = ('snapshot: 1\nprune_method: "SFP_Row"\nprune_rounds: 100000\nprune_interval: 1\n'
           'snapshot_after_train: false\n')
KILL_BUDGET_S = 30.0
LONG_ITER = 100000  # the killed runs never reach it


def _setup(folder: Path) -> None:
    write_tiny(folder, PRUNING, solver=TINY_SOLVER.replace("max_iter: 4",
                                                            f"max_iter: {LONG_ITER}"))
    net = (folder / "net.prototxt").read_text()
    net = net.replace('layer { name: "ip1" type: "InnerProduct" bottom: "conv1" top: "ip1"', WIDE)
    net = net.replace('bottom: "data" top: "conv1"',
                      'bottom: "data" top: "conv1" prune_param { prune_ratio: 0.5 }')
    (folder / "net.prototxt").write_text(net)


def _check_final_names(snap: Path) -> dict[int, Path]:
    """Every file under a final name parses completely; returns iter -> solverstate."""
    states = {}
    for model in snap.glob("tiny_iter_*.caffemodel"):
        blobs = caffe.layer_blobs(caffe.read_caffemodel(model))
        assert blobs["ip0"][0].shape == (512, 800) and np.isfinite(blobs["ip0"][0]).all(), model
    for path in snap.glob("tiny_iter_*.solverstate"):
        state = caffe.read_solverstate(path)
        assert state.prunekit_state and len(state.history) == 6, path
        assert (snap.parent / state.learned_net).is_file(), path  # relative to the run folder
        states[state.iter] = path
    return states


def _kill_moment(snap: Path, during_write: bool, rng: random.Random) -> None:
    """Return at the moment to kill: as soon as a snapshot temp file exists (a write in
    progress), or after a seeded random delay."""
    if not during_write:
        time.sleep(rng.uniform(0.0, 0.3))
        return
    end = time.monotonic() + 10
    while time.monotonic() < end and not any(p.name.endswith(".tmp") for p in snap.iterdir()):
        pass


def test_sigkill_never_leaves_a_truncated_snapshot(tmp_path: Path) -> None:
    _setup(tmp_path)
    snap = tmp_path / "snap"
    rng = random.Random(18)
    kills, during_write, deadline = 0, 0, time.monotonic() + KILL_BUDGET_S
    while kills < 3 or (time.monotonic() < deadline and kills < 8):
        states = _check_final_names(snap)
        resume = ["--snapshot", str(states[max(states)])] if states else []
        proc = start_train(tmp_path, *resume)
        seen: list[str] = []
        for _ in range(rng.randint(1, 3)):  # let a few snapshots begin
            wait_for(proc, "Snapshotting solver state", seen)
        if kills % 2 == 0:  # the previous snapshot is complete once the next one begins
            wait_for(proc, "Snapshotting to binary proto file", seen)
        _kill_moment(snap, kills % 2 == 0, rng)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
        kills += 1
        during_write += any(p.name.endswith(".tmp") for p in snap.iterdir())
    assert during_write >= 1, "no kill landed inside a snapshot write"
    states = _check_final_names(snap)
    assert states, "no snapshot survived the kills"
    newest = max(states)
    temps_before = sorted(p.name for p in snap.iterdir() if p.name.endswith(".tmp"))
    solver = tmp_path / "solver.prototxt"  # the last run goes 3 iterations past the newest
    solver.write_text(solver.read_text().replace(f"max_iter: {LONG_ITER}",
                                                 f"max_iter: {newest + 3}"))
    final = run_cli(["train", "--solver", "solver.prototxt", "--snapshot", str(states[newest])],
                    tmp_path, check=True, timeout=600)
    assert f"Restoring previous solver status from {states[newest]}" in final.stderr
    first = re.search(r"Iteration (\d+), loss", final.stderr)
    assert first and int(first.group(1)) == newest
    assert (snap / f"tiny_iter_{newest + 3}.solverstate").is_file()
    for name in temps_before:  # what the kills left is gone, and said so
        assert f"Removed snap/{name}, a partial snapshot" in final.stderr
    assert not [p for p in snap.iterdir() if p.name.endswith(".tmp")]
    print(f"{kills} kills, {during_write} inside a snapshot write, resumed from {newest}")


def test_stale_temp_files_of_this_prefix_are_removed(tmp_path: Path) -> None:
    write_tiny(tmp_path, solver=TINY_SOLVER.replace("max_iter: 4", "max_iter: 1"))
    snap = tmp_path / "snap"
    stale = [snap / ".tiny_iter_3.caffemodel.k2j4x9.tmp", snap / ".tiny_iter_3.solverstate.a8b.tmp"]
    keep = [snap / ".other_iter_3.caffemodel.k2j4x9.tmp", snap / "notes.tmp"]
    for path in stale + keep:
        path.write_bytes(b"\x08\x01partial")
    proc = run_cli(["train", "--solver", "solver.prototxt"], tmp_path, check=True)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in keep)
    assert proc.stderr.count("a partial snapshot left by an interrupted run") == 2
