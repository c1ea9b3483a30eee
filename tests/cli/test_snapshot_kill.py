"""SIGKILL during a pruning run, snapshot writes included: never a truncated .caffemodel or
.solverstate under a final name; the newest snapshot resumes; stale temp files are removed.

A short SFP_Row run (masks re-chosen every iteration, so the solverstate carries live pruning
state) snapshots every iteration, so much of its time is spent writing snapshots. It is
SIGKILLed at seeded random moments after its first snapshot began, resumed from the newest
snapshot, killed again, ... (bounded to about 30 s of killing), then run to the end.
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
FINAL_ITER = 400


def _setup(folder: Path) -> None:
    write_tiny(folder, PRUNING, solver=TINY_SOLVER.replace("max_iter: 4",
                                                            f"max_iter: {FINAL_ITER}"))
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
        assert Path(state.learned_net).is_file(), path
        states[state.iter] = path
    return states


def test_sigkill_never_leaves_a_truncated_snapshot(tmp_path: Path) -> None:
    _setup(tmp_path)
    snap = tmp_path / "snap"
    rng = random.Random(18)
    kills, temps_seen, deadline = 0, 0, time.monotonic() + KILL_BUDGET_S
    while time.monotonic() < deadline or kills < 2:
        states = _check_final_names(snap)
        resume = ["--snapshot", str(states[max(states)])] if states else []
        proc = start_train(tmp_path, *resume)
        seen: list[str] = []
        wait_for(proc, "Snapshotting to binary proto file", seen)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, "".join(seen[-20:])
        kills += 1
        temps_seen += len([p for p in snap.iterdir() if p.name.endswith(".tmp")])
    states = _check_final_names(snap)
    assert states, "no snapshot survived the kills"
    newest = max(states)
    temps_before = sorted(p.name for p in snap.iterdir() if p.name.endswith(".tmp"))
    final = run_cli(["train", "--solver", "solver.prototxt", "--snapshot", str(states[newest])],
                    tmp_path, check=True, timeout=600)
    assert f"Restoring previous solver status from {states[newest]}" in final.stderr
    first = re.search(r"Iteration (\d+), loss", final.stderr)
    assert first and int(first.group(1)) == newest
    assert (snap / f"tiny_iter_{FINAL_ITER}.caffemodel").is_file()
    for name in temps_before:  # what the kills left is gone, and said so
        assert f"Removed snap/{name}, a partial snapshot" in final.stderr
    assert not [p for p in snap.iterdir() if p.name.endswith(".tmp")]
    print(f"{kills} kills, {temps_seen} temp files seen after kills, resumed from {newest}")


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
