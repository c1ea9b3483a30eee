"""Accuracy-floor mode (acc_borderline > 0, reference 3.2-3.4) end to end on the Caffe_IncReg
fixture: stages grow while the retrained accuracy stays at the floor, a stage below it is
rolled back and retried with the interpolated increment, and final_retrain ends the run on the
best model. The increments printed are checked against the accuracies printed."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import LENET_FIXTURE, app_course, fixture_experiment, run_cli
from prunekit import caffe

FLOOR = 0.99
BASELINE = 0.999


@pytest.fixture(scope="module")
def floor_run(mnist_root: Path, tmp_path_factory):
    if not LENET_FIXTURE.is_dir():
        pytest.skip("shared fixtures missing")
    root = tmp_path_factory.mktemp("floor")
    (root / "data").mkdir()
    (root / "data" / "mnist").symlink_to(mnist_root / "data" / "mnist")
    changes = {"acc_borderline: -1": f"acc_borderline: {FLOOR}\nbaseline_acc: {BASELINE}",
               "test_iter: 1000": "test_iter: 2"}
    exp = fixture_experiment(root, LENET_FIXTURE, changes,
                             extra="random_seed: 3\ncnt_after_max_acc: 1\nmax_cnt_lr_decay: 1\n")
    proc = run_cli(["train", "--solver", "compression_experiments/lenet5/solver.prototxt",
                    "--weights", str(LENET_FIXTURE / "baseline_lenet5.caffemodel")], root,
                   timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return exp, proc


def _cycles(course: list[str]) -> list[tuple[float, str, float]]:
    """Per retrain cycle: (top-3 mean of its tests, verdict 'good'/'bad', printed incre_pr)."""
    out, accs, verdict = [], [], None
    for line in course:
        if "'retrain' going on" in line:
            accs.append(float(re.search(r"current acc = ([\d.]+)", line).group(1)))
        elif "still good" in line or "**bad**" in line:
            verdict = "good" if "still good" in line else "bad"
        elif "incre_pr:" in line and verdict:
            top3 = sorted(accs, reverse=True)[:3]
            out.append((sum(top3) / len(top3), verdict,
                        float(re.search(r"incre_pr: ([\d.e+-]+)", line).group(1))))
            accs, verdict = [], None
    return out


def test_stages_rollback_and_final_retrain(floor_run) -> None:
    exp, proc = floor_run
    course = app_course(proc.stdout)
    cycles = _cycles(course)
    verdicts = [v for _, v, _ in cycles]
    assert "good" in verdicts and "bad" in verdicts, course
    last_acc, last_incre = BASELINE, 0.2
    for acc, verdict, incre in cycles:
        assert (verdict == "good") == (FLOOR - acc <= 5e-4), (acc, verdict)
        if verdict == "good":
            expected = min(max((acc - FLOOR) * 10, 0.01), 0.2)
            last_acc = acc
        else:  # linear interpolation towards the floor between last feasible and this stage
            expected = last_incre / (last_acc - acc) * (last_acc - FLOOR)
        assert math.isclose(incre, expected, rel_tol=1e-4, abs_tol=1e-6), (acc, verdict, incre)
        last_incre = incre
    # a rejected stage rolls back to the accepted stage's snapshot, or, when the retry increment
    # is too small, to that stage's best retrain model for final_retrain
    for i, line in enumerate(course):
        m = re.search(r"roll back weights to iter = (\d+) \(stage = (\d+)\)", line)
        if not m:
            continue
        tail = course[i:]
        resume = next(l for l in tail if "resuming from:" in l)
        stem = re.search(r"weights/(\S+)\.solverstate", resume).group(1)
        if any("incre_pr is too small" in l for l in tail[:tail.index(resume)]):
            assert stem.startswith(f"_stage{m.group(2)}-retrain_iter_") or m.group(2) == "0", stem
        else:
            assert stem == f"_stage{m.group(2)}_iter_{m.group(1)}", stem
            assert (exp / "weights" / f"{stem}.caffemodel").is_file()
    assert any("Go to 'final_retrain'" in line or "incre_pr is too small" in line
               for line in course), course
    assert any("All 'final_retrain' done" in line for line in course)
    assert any("All prune done" in line for line in course)


def test_best_model_matches_the_final_table(floor_run) -> None:
    exp, proc = floor_run
    model = re.search(r"Best model: (\S+\.caffemodel)", proc.stderr).group(1)
    path = exp.parents[1] / model
    assert path.is_file()
    table = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"\[app\]    (\w+), shape = .*? num_pruned_col = (\d+)", proc.stdout)}
    blobs = caffe.layer_blobs(caffe.read_caffemodel(path))
    for name in ("conv1", "conv2"):
        w = blobs[name][0].reshape(blobs[name][0].shape[0], -1)
        assert int((np.abs(w).sum(0) == 0).sum()) >= table[name] > 0
    # retention: of the retrain snapshots only the best model is left
    leftovers = [p.name for p in (exp / "weights").glob("*retrain_iter_*.caffemodel")]
    assert leftovers == [path.name], leftovers
