"""Snapshot at iteration k, resume: every loss and test line after k equals the uninterrupted run.

The net has Dropout and random crops/mirrors, and the solver smooths the loss over a window, so
the RNG states, the data positions and the loss window must all come back from the solverstate.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from cli_helpers import LENET_DIR, run_cli
from prunekit import caffe

SOLVER = """
net: "train_val.prototxt"
test_iter: 2
test_interval: 6
base_lr: 0.01
momentum: 0.9
weight_decay: 0.0005
lr_policy: "step"
stepsize: 7
gamma: 0.5
display: 1
average_loss: 4
max_iter: 16
snapshot: 8
snapshot_prefix: "snap/lenet"
random_seed: 7
"""


def _net_text() -> str:
    """The lenet5 net with random crops/mirrors and a Dropout layer, to exercise every RNG."""
    text = (LENET_DIR / "train_val.prototxt").read_text()
    text = text.replace("transform_param { scale: 0.00390625 }          # pixels / 256",
                        "transform_param { scale: 0.00390625 crop_size: 24 mirror: true }", 1)
    text = text.replace("transform_param { scale: 0.00390625 }",
                        "transform_param { scale: 0.00390625 crop_size: 24 }", 1)
    dropout = 'layer { name: "drop1" type: "Dropout" bottom: "ip1" top: "ip1" dropout_param { dropout_ratio: 0.5 } }\n'
    marker = 'layer {\n  name: "ip2"'
    assert marker in text and "crop_size: 24 mirror" in text
    return text.replace(marker, dropout + marker)


def _setup(folder: Path) -> None:
    (folder / "snap").mkdir()
    (folder / "solver.prototxt").write_text(SOLVER)
    (folder / "train_val.prototxt").write_text(_net_text())


def _lines_after(stderr: str, k: int) -> list[str]:
    """Loss, lr and test-output lines from iteration k on, without the glog prefix."""
    out, current = [], -1
    for line in stderr.splitlines():
        body = line.split("] ", 1)[-1]
        match = re.match(r"Iteration (\d+)", body)
        if match:
            current = int(match.group(1))
        if current >= k and ("loss" in body or "lr =" in body or "Test net output" in body):
            out.append(body)
    return out


def test_resume_continues_exactly(workdir: Path, tmp_path_factory) -> None:
    _setup(workdir)
    full = run_cli(["train", "-solver", "solver.prototxt"], workdir, check=True)
    assert (workdir / "snap" / "lenet_iter_8.solverstate").is_file()

    other = tmp_path_factory.mktemp("resume")
    shutil.copytree(workdir / "data", other / "data", symlinks=True)
    _setup(other)
    for ext in ("caffemodel", "solverstate"):
        shutil.copy(workdir / "snap" / f"lenet_iter_8.{ext}", other / "snap")
    resumed = run_cli(["train", "--solver", "solver.prototxt",
                       "--snapshot", "snap/lenet_iter_8.solverstate"], other, check=True)

    expected = _lines_after(full.stderr, 8)
    assert len(expected) > 20, full.stderr[-2000:]
    assert _lines_after(resumed.stderr, 8) == expected
    a = caffe.layer_blobs(caffe.read_caffemodel(workdir / "snap" / "lenet_iter_16.caffemodel"))
    b = caffe.layer_blobs(caffe.read_caffemodel(other / "snap" / "lenet_iter_16.caffemodel"))
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)


def test_resume_from_a_different_start_differs(workdir: Path) -> None:
    """Guard against a vacuous comparison: a run without the snapshot must not match."""
    _setup(workdir)
    full = run_cli(["train", "-solver", "solver.prototxt"], workdir, check=True)
    (workdir / "solver.prototxt").write_text(SOLVER.replace("random_seed: 7", "random_seed: 8"))
    other = run_cli(["train", "-solver", "solver.prototxt"], workdir, check=True)
    assert _lines_after(full.stderr, 8) != _lines_after(other.stderr, 8)
